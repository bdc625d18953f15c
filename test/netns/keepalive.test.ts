/**
 * gRPC keepalive and reconnects of Fluxo's channel options (core/rpc `channelOptions`) across a
 * real link: a grpc-js server with those options in its own network namespace, a client in the
 * test process. The keepalive times are shortened (100 ms / 500 ms instead of 10 s / 5 s) so the
 * test takes seconds; everything else is `channelOptions` as the processes use it.
 *
 * - The server accepts the client's pings: ~30 pings (one per 100 ms, more often than any
 *   enforcing server would allow) and the long-lived stream still carries messages; a server that
 *   refused them would answer GOAWAY `too_many_pings` and break the stream.
 * - A silent partition is noticed by keepalive alone: the stream fails UNAVAILABLE within about
 *   keepalive time + timeout, while TCP by itself would retransmit for minutes.
 * - After the heal the channel reconnects by itself (connection backoff capped at 5 s).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelOptions, fluxoProto, grpc } from '../../core/rpc/index.js';
import type { CreditBatch, DataBatch } from '../../core/rpc/types.js';
import { createNetwork, netnsUnavailable, type VirtualNetwork } from '../support/netns.js';
import { type ManagedProcess, REPO_ROOT, requireBuiltCli, waitFor } from '../support/processes.js';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`SKIPPED test/netns/keepalive.test.ts: ${unavailable}`);

const PORT = 7100;

/** A DataPlaneService whose exchange answers every batch with an empty credit batch, built with `channelOptions`. */
const SERVER = `
const { channelOptions, fluxoProto, grpc } = await import(process.argv[1] + 'dist/core/rpc/index.js');
const server = new grpc.Server(channelOptions);
server.addService(fluxoProto().DataPlaneService.service, {
  exchange: (call) => {
    call.on('data', () => call.write({ credits: [] }));
    call.on('end', () => call.end());
    call.on('error', () => {});
  },
});
server.bindAsync(process.argv[2], grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(err.message); process.exit(1); }
  console.log('listening');
});
`;

type Exchange = grpc.ClientDuplexStream<DataBatch, CreditBatch>;

describe.skipIf(unavailable !== null)('gRPC keepalive and reconnects across a link (network namespaces)', () => {
  let net: VirtualNetwork;
  let server: ManagedProcess;
  let client: grpc.Client;

  beforeAll(async () => {
    requireBuiltCli();
    net = await createNetwork(['server']);
    server = net.run('server', [
      process.execPath,
      '--input-type=module',
      '-e',
      SERVER,
      REPO_ROOT,
      `${net.address('server')}:${PORT}`,
    ]);
    await server.waitForOutput(/listening/, 15_000);
    client = new (fluxoProto().DataPlaneService)(
      `${net.address('server')}:${PORT}`,
      grpc.credentials.createInsecure(),
      { ...channelOptions, 'grpc.keepalive_time_ms': 100, 'grpc.keepalive_timeout_ms': 500 },
    );
  });

  afterAll(async () => {
    client?.close();
    await net?.teardown();
  });

  /** Opens an exchange stream; `replies()` counts the answers, `error()` the failure, if any. */
  function open(): { call: Exchange; replies: () => number; error: () => grpc.ServiceError | undefined } {
    const call = (client as unknown as { exchange: (md: grpc.Metadata) => Exchange }).exchange(new grpc.Metadata());
    let n = 0;
    let err: grpc.ServiceError | undefined;
    call.on('data', () => n++);
    call.on('error', (e: grpc.ServiceError) => (err = e));
    return { call, replies: () => n, error: () => err };
  }

  it('pings every 100 ms are accepted for 3 s; then a cut is noticed by keepalive; after the heal it reconnects', async () => {
    const s = open();
    s.call.write({ frames: [] });
    await waitFor(() => s.replies() === 1, { timeoutMs: 5000, message: 'no answer' });
    await new Promise((r) => setTimeout(r, 3000)); // ~30 keepalive pings on an idle stream
    s.call.write({ frames: [] });
    await waitFor(() => s.replies() === 2, {
      timeoutMs: 2000,
      message: () => `the stream no longer answers after 3 s of pings: ${s.error()?.message}`,
    });
    expect(s.error()).toBeUndefined();

    const cutAt = Date.now();
    await net.cut('server');
    await waitFor(() => s.error(), { timeoutMs: 5000, intervalMs: 20, message: 'keepalive did not notice the cut' });
    const noticedMs = Date.now() - cutAt;
    expect(s.error()?.code).toBe(grpc.status.UNAVAILABLE);
    // at most one ping interval plus the ping timeout (+ slack for a busy machine)
    expect(noticedMs).toBeLessThan(100 + 500 + 1000);

    await new Promise((r) => setTimeout(r, 2000)); // cut for a while: the channel fails to reconnect and backs off
    const healAt = Date.now();
    await net.heal('server');
    let reconnectedMs = -1;
    await waitFor(
      async () => {
        const again = open();
        again.call.write({ frames: [] });
        const ok = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 1000);
          again.call.once('data', () => {
            clearTimeout(t);
            resolve(true);
          });
          again.call.once('error', () => {
            clearTimeout(t);
            resolve(false);
          });
        });
        again.call.cancel();
        if (ok) reconnectedMs = Date.now() - healAt;
        return ok;
      },
      { timeoutMs: 15_000, intervalMs: 100, message: 'no new stream after the heal' },
    );
    // the connection backoff is capped at 5 s (plus TCP's own SYN retransmission, plus the probe)
    expect(reconnectedMs).toBeLessThan(9000);
    console.info(
      `keepalive noticed the cut after ${noticedMs} ms; a new stream worked ${reconnectedMs} ms after the heal`,
    );
  });
});
