/**
 * `fluxo ingest mqtt`: a bridge from an MQTT broker into a Fluxo stream (Redis Streams), so that
 * sensor readings land in a durable, replayable log before any job reads them.
 *
 * Delivery: it subscribes with QoS 1 in a persistent MQTT 5 session (clean start off, a session
 * expiry of 7 days, a fixed client id),
 * and acknowledges (PUBACK) a message only after its reading is stored, so a crash of the bridge
 * loses nothing: the broker redelivers every unacknowledged message when the bridge reconnects.
 * QoS 1 may deliver a message twice (a redelivery carries the DUP flag); each stored message
 * leaves a dedupe marker `fluxo:stream:{name}:seen:{sha1}` (TTL `dedupeTtlS`) written in the same
 * Lua script as the XADD, and a DUP message whose marker exists is acknowledged without being
 * stored again. The marker hashes client id, topic, packet id and payload: a redelivery repeats
 * all four, while a new message with the same payload gets a new packet id.
 *
 * Throughput: mqtt.js hands QoS 1 messages over one at a time and waits for each acknowledgement,
 * so one bridge stores one message per Redis round trip (about 5,000 readings/s on a 2-core
 * machine with a local Redis). For more, run several bridges in a shared subscription
 * (`shareGroup`). The broker must be allowed to queue a burst for a slow or absent bridge:
 * Mosquitto drops QoS 1 messages beyond `max_queued_messages` (default 1000) per client.
 *
 * Mapping: each `+` level of the topic filter names a field (`--fields house,room,sensor` for
 * `home/+/+/+/temperature`); a JSON object payload adds its fields (topic fields win); a bare
 * number becomes `valueField`. `timestamp` (ms) is the payload's `timestamp`/`ts` when it has one,
 * else the time the bridge received it. A payload that is neither goes to the stream's
 * dead-letter key `fluxo:stream:{name}:rejected` with its topic and reason, and is acknowledged.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import mqtt, { type IClientOptions } from 'mqtt';
import { EngineError } from '../core/errors/index.js';
import type { Logger } from '../core/log/index.js';
import { luaCommand } from '../core/redis/script.js';
import { claimStreamPartitions, type StreamLayout, streamLayout } from '../core/streams/layout.js';

export interface IngestMqttOptions {
  /** broker URL, e.g. `mqtt://127.0.0.1:1883` (mqtts:// for TLS) */
  broker: string;
  /** topic filter with `+` wildcards, e.g. `home/+/+/+/temperature` */
  topic: string;
  /** stream name: entries go to `fluxo:stream:{stream}:{p}` */
  stream: string;
  /** names of the `+` levels, in order; default `level1, level2, …` */
  fields?: string[];
  /** field a bare-number payload is stored under. Default `value` */
  valueField?: string;
  /** field the partition is chosen by. Default: the last topic field */
  keyField?: string;
  /** partitions of the stream. Default 1 */
  partitions: number;
  /** the Redis holding the stream */
  redisUrl: string;
  /** MQTT client id of the persistent session. Default `fluxo-ingest-{stream}` */
  clientId?: string;
  /** seconds a dedupe marker lives. Default 86400 */
  dedupeTtlS?: number;
  /** seconds the broker keeps the session (and its queued messages) while the bridge is away. Default 604800 (7 days) */
  sessionExpiryS?: number;
  /**
   * MQTT 5 shared subscription group: several bridges with the same group (and different client
   * ids) split the messages between them (`$share/<group>/<filter>`). Default: none
   */
  shareGroup?: string;
  log: Logger;
}

/** Why a topic filter cannot be used, or null. Wildcards: `+` per level; `#` is refused (no field names). */
export function topicProblem(filter: string): string | null {
  if (filter === '' || filter.includes('#'))
    return `topic filter ${JSON.stringify(filter)}: use + for each level to map ('#' cannot name fields)`;
  if (filter.split('/').some((l) => l.includes('+') && l !== '+'))
    return `topic filter ${JSON.stringify(filter)}: + must be a whole level`;
  return null;
}

/** The values of the `+` levels of `topic` under `filter`, or null if it does not match. */
export function topicLevels(filter: string, topic: string): string[] | null {
  const f = filter.split('/');
  const t = topic.split('/');
  if (f.length !== t.length) return null;
  const out: string[] = [];
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '+') out.push(t[i]);
    else if (f[i] !== t[i]) return null;
  }
  return out;
}

/**
 * Turns one message into a record: topic fields, then payload fields, `timestamp` in ms.
 * @returns the record, or a reason it cannot be one
 */
export function recordOf(
  fields: string[],
  levels: string[],
  payload: Buffer,
  valueField: string,
  receivedAtMs: number,
): { record: Record<string, unknown> } | { reason: string } {
  const text = payload.toString('utf8').trim();
  const record: Record<string, unknown> = {};
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text)) {
    record[valueField] = Number(text);
  } else if (text.startsWith('{') || text.startsWith('[')) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      return { reason: `payload is not JSON: ${(err as Error).message}` };
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      return { reason: 'payload is not a JSON object' };
    Object.assign(record, obj);
  } else {
    return { reason: 'payload is neither a number nor a JSON object' };
  }
  levels.forEach((v, i) => {
    record[fields[i]] = v;
  });
  const ts = record.timestamp ?? record.ts;
  if (ts === undefined) record.timestamp = receivedAtMs;
  else if (typeof ts !== 'number' || !Number.isFinite(ts))
    return { reason: `timestamp ${JSON.stringify(ts)} is not a number of ms` };
  else record.timestamp = ts;
  delete record.ts;
  return { record };
}

// KEYS[1] stream, KEYS[2] dedupe marker; ARGV[1] field name, ARGV[2] entry, ARGV[3] ttl s, ARGV[4] '1' if DUP
// returns the entry id, or false when a DUP's marker says it is stored already
const APPEND = `
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
return id
`;

/** What `storeMessage` needs besides the message. */
export interface StoreContext {
  filter: string;
  fields: string[];
  valueField: string;
  keyField: string;
  layout: StreamLayout;
  clientId: string;
  /** dedupe marker TTL, seconds (a decimal string) */
  ttlS: string;
}

/**
 * Stores one MQTT message: a record appended to its partition with its dedupe marker (one Lua
 * script), or, for a DUP whose marker exists, nothing; a message that is no record goes to the
 * rejected stream. Resolves with what happened; rejects when Redis fails (nothing acknowledged).
 */
export async function storeMessage(
  redis: Redis,
  c: StoreContext,
  topic: string,
  message: Buffer,
  packet: { messageId?: number; dup?: boolean },
): Promise<'stored' | 'duplicates' | 'rejected'> {
  const levels = topicLevels(c.filter, topic);
  const r = levels
    ? recordOf(c.fields, levels, message, c.valueField, Date.now())
    : { reason: `topic ${topic} does not match ${c.filter}` };
  if (!('record' in r)) {
    await redis.xadd(
      c.layout.rejectedKey,
      '*',
      'topic',
      topic,
      'reason',
      r.reason,
      'payload',
      message.toString('utf8'),
    );
    return 'rejected';
  }
  const key = String(r.record[c.keyField] ?? '');
  const marker = `${c.layout.prefix}:seen:${createHash('sha1')
    .update(`${c.clientId}\u0000${topic}\u0000${packet.messageId ?? ''}\u0000`)
    .update(message)
    .digest('hex')}`;
  const appendOnce = luaCommand<(...args: string[]) => Promise<string | null>>(
    redis,
    'fluxoIngestAppendOnce',
    APPEND,
    2,
  );
  const id = await appendOnce(
    c.layout.keyFor(key),
    marker,
    c.layout.field,
    JSON.stringify(r.record),
    c.ttlS,
    packet.dup ? '1' : '0',
  );
  return id === null ? 'duplicates' : 'stored';
}

/** Counts of a running bridge. */
export interface IngestStats {
  stored: number;
  duplicates: number;
  rejected: number;
}

/**
 * Runs the bridge until `signal` aborts (then it disconnects cleanly; unacknowledged messages
 * stay with the broker). A Redis write that fails after the client's retries ends the bridge with
 * the error, without acknowledging that message.
 * @throws EngineError SPEC_INVALID for a bad topic filter or field list, or a partition count
 *   other than the stream's
 */
export async function ingestMqtt(
  o: IngestMqttOptions,
  signal: AbortSignal,
  onStats?: (s: IngestStats) => void,
): Promise<IngestStats> {
  const problem = topicProblem(o.topic);
  if (problem) throw new EngineError('SPEC_INVALID', problem);
  const wildcards = o.topic.split('/').filter((l) => l === '+').length;
  const fields = o.fields ?? Array.from({ length: wildcards }, (_, i) => `level${i + 1}`);
  if (fields.length !== wildcards)
    throw new EngineError(
      'SPEC_INVALID',
      `--fields names ${fields.length} field(s), the topic filter ${o.topic} has ${wildcards} + level(s)`,
    );
  const valueField = o.valueField ?? 'value';
  const keyField = o.keyField ?? fields[fields.length - 1] ?? valueField;
  const layout: StreamLayout = streamLayout(o.stream, o.partitions);
  const clientId = o.clientId ?? `fluxo-ingest-${o.stream}`;
  const ttl = String(o.dedupeTtlS ?? 86_400);
  const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 5 });
  redis.on('error', () => {});
  try {
    // the partition count is fixed by the first writer of the stream; another count is refused
    await claimStreamPartitions(redis, o.stream, o.partitions);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const stats: IngestStats = { stored: 0, duplicates: 0, rejected: 0 };
  const ctx: StoreContext = { filter: o.topic, fields, valueField, keyField, layout, clientId, ttlS: ttl };
  let fatal: Error | undefined;
  let stopWith: (err?: Error) => void = () => {};
  const stopped = new Promise<void>((resolve, reject) => {
    stopWith = (err) => (err ? reject(err) : resolve());
  });

  const options: IClientOptions = {
    clientId,
    // MQTT 5 (mqtt.js acknowledges by hand only under v5): a persistent session that outlives the
    // connection for `sessionExpiryS`, so the broker keeps unacknowledged QoS 1 messages for us
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: o.sessionExpiryS ?? 604_800 },
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    customHandleAcks: (topic, message, packet, ack) => {
      const write = storeMessage(redis, ctx, topic, message, packet).then((outcome) => {
        stats[outcome]++;
      });
      write.then(
        () => {
          onStats?.(stats);
          ack(0);
        },
        (err: Error) => {
          // not acknowledged: the broker redelivers it to the next session
          fatal = new EngineError('REDIS_UNAVAILABLE', `cannot store a reading in ${layout.prefix}: ${err.message}`, {
            cause: err,
          });
          stopWith(fatal);
        },
      );
    },
  };
  const client = mqtt.connect(o.broker, options);
  client.on('connect', (ack) => {
    o.log.info({ broker: o.broker, clientId, sessionPresent: ack.sessionPresent }, 'mqtt connected');
    const subscription = o.shareGroup ? `$share/${o.shareGroup}/${o.topic}` : o.topic;
    client.subscribe(subscription, { qos: 1 }, (err) => {
      if (err) stopWith(new EngineError('INTERNAL', `cannot subscribe to ${o.topic}: ${err.message}`));
    });
  });
  client.on('reconnect', () => o.log.warn({ broker: o.broker }, 'mqtt reconnecting'));
  client.on('error', (err) => o.log.warn({ broker: o.broker, err: err.message }, 'mqtt error'));
  const onAbort = () => stopWith();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await stopped;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await client.endAsync(fatal !== undefined).catch(() => {});
    redis.disconnect();
  }
  return stats;
}
