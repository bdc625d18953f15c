#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { EngineError } from '../core/errors/index.js';
import { createLogger } from '../core/log/index.js';
import { loadRpcSecurity, type SecurityFlags } from '../core/rpc/security.js';
import { JobManagerClient } from './jm-client.js';
import { printJobStatus, printJobs, printSavepoints, printTaskManagers, savepointLine } from './print.js';
import type { TaskManagerProcessOptions } from './processes.js';
import { registerScaleCommand } from './scale.js';

/**
 * The `fluxo` CLI. Every command has --help; an error prints one readable message (plus the list
 * of problems for an invalid spec) and exits non-zero, never a stack trace.
 */
const program = new Command();

function positiveInt(what: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > 2 ** 31) {
      throw new InvalidArgumentError(`${what} must be an integer ${min === 0 ? '≥ 0' : `≥ ${min}`}`);
    }
    return n;
  };
}
/** A savepoint id option: an empty one would mean "no savepoint" on the wire, i.e. a fresh job. */
function savepointId(v: string): string {
  const id = v.trim();
  if (id === '')
    throw new InvalidArgumentError('--from-savepoint needs a savepoint id, as `fluxo savepoints` lists it');
  return id;
}
const collect = (v: string, prev: string[]): string[] => [...prev, v];
const jmOption = [
  '--jobmanager <host:port>',
  'JobManager RPC address (env FLUXO_JOBMANAGER)',
  process.env.FLUXO_JOBMANAGER ?? '127.0.0.1:6123',
] as const;

/** An on/off environment variable: 1, true, yes or on (any case) is on. */
const envFlag = (name: string): boolean => /^(1|true|yes|on)$/i.test(process.env[name]?.trim() ?? '');

/**
 * Adds the TLS and cluster-token flags (docs/security.md) to `c`, each with an environment
 * fallback so every command of a shell gets them without repeating flags. `server`: `fluxo
 * jobmanager` and `fluxo taskmanager` (their certificate serves their own gRPC server and their
 * calls to the other processes); `client`: the commands that call the JobManager.
 */
function securityOptions(c: Command, role: 'server' | 'client'): Command {
  c.addOption(
    new Option(
      '--tls-ca <file>',
      role === 'server'
        ? "CA certificate (PEM) that signs the cluster's certificates: checks the processes this one calls, and callers with --tls-client-auth"
        : "CA certificate (PEM) that signs the JobManager's certificate; turns TLS on",
    ).env('FLUXO_TLS_CA'),
  )
    .addOption(
      new Option(
        '--tls-cert <file>',
        role === 'server'
          ? "this process's certificate (PEM; SANs: its advertised address); turns TLS on, needs --tls-key"
          : 'client certificate (PEM) for a JobManager with --tls-client-auth; needs --tls-key',
      ).env('FLUXO_TLS_CERT'),
    )
    .addOption(new Option('--tls-key <file>', 'private key (PEM, unencrypted) of --tls-cert').env('FLUXO_TLS_KEY'));
  if (role === 'server')
    c.option(
      '--tls-client-auth',
      'mutual TLS: refuse callers without a certificate signed by --tls-ca (env FLUXO_TLS_CLIENT_AUTH=1)',
    );
  else c.option('--tls', "TLS checked against Node's public CAs, without --tls-ca (env FLUXO_TLS=1)");
  return c
    .addOption(
      new Option(
        '--tls-server-name <name>',
        'check server certificates for this name instead of the host dialled (grpc.ssl_target_name_override)',
      ).env('FLUXO_TLS_SERVER_NAME'),
    )
    .addOption(
      new Option(
        '--cluster-token-file <file>',
        'file whose first line is the cluster token (else env FLUXO_CLUSTER_TOKEN holds the token itself)',
      ).env('FLUXO_CLUSTER_TOKEN_FILE'),
    );
}

/** The command being run (set just before its action): where its options' values came from. */
let running: Command | undefined;

/** `env` when option `key` of the running command was set from that environment variable. */
function envSource(key: string, env: string): string | undefined {
  return running?.getOptionValueSourceWithGlobals(key) === 'env' ? env : undefined;
}

/** The security flags of a command's options, with the on/off environment fallbacks applied. */
function securityFlags(o: SecurityFlags): SecurityFlags {
  return {
    envNames: {
      tlsCa: envSource('tlsCa', 'FLUXO_TLS_CA'),
      tlsCert: envSource('tlsCert', 'FLUXO_TLS_CERT'),
      tlsKey: envSource('tlsKey', 'FLUXO_TLS_KEY'),
    },
    tlsCa: o.tlsCa,
    tlsCert: o.tlsCert,
    tlsKey: o.tlsKey,
    tlsClientAuth: o.tlsClientAuth === true || envFlag('FLUXO_TLS_CLIENT_AUTH'),
    tls: o.tls === true || envFlag('FLUXO_TLS'),
    tlsServerName: o.tlsServerName,
    clusterTokenFile: o.clusterTokenFile,
  };
}

/**
 * A client of the JobManager at `o.jobmanager` with the command's TLS and cluster token.
 * @throws EngineError naming the flag and file when a TLS or token file is unusable
 */
function jmClient(o: { jobmanager: string } & SecurityFlags): JobManagerClient {
  return new JobManagerClient(
    o.jobmanager,
    loadRpcSecurity(securityFlags(o), 'client', process.env.FLUXO_CLUSTER_TOKEN),
  );
}

program
  .name('fluxo')
  .description('Fluxo: distributed stream processing for IoT sensor analytics')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

program
  .command('jobmanager')
  .description('run a JobManager: accepts jobs, schedules them onto TaskManagers, keeps job state in Redis')
  .option('--host <addr>', 'address to bind', '127.0.0.1')
  .option('--rpc-port <port>', 'gRPC port', positiveInt('--rpc-port'), 6123)
  .option(
    '--web-port <port>',
    'HTTP port of the web UI, REST API and /metrics; 0 = off',
    positiveInt('--web-port'),
    8081,
  )
  .option('--web-host <addr>', 'address the web server binds (not loopback: mutations need a token)', '127.0.0.1')
  .option(
    '--web-token-file <file>',
    'file with the web access token (env FLUXO_WEB_TOKEN): mutations need Authorization: Bearer <token>',
  )
  .addOption(
    new Option('--web-auth <what>', 'what the token protects: mutations, or reads too')
      .choices(['mutations', 'reads'])
      .default('mutations'),
  )
  .option('--chaos', 'allow killing TaskManagers from the web UI / POST /taskmanagers/:id/kill', false)
  .option('--redis <url>', 'Redis URL (env REDIS_URL)', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  .option(
    '--checkpoint-interval <ms>',
    'checkpoint jobs whose spec has no checkpoint: block every <ms> (env FLUXO_CHECKPOINT_INTERVAL_MS; other FLUXO_CHECKPOINT_* settings in the README)',
    positiveInt('--checkpoint-interval', 1),
  )
  .addOption(
    new Option(
      '--scheduler <kind>',
      'reactive: jobs with checkpoints rescale to the slots the TaskManagers offer (Flink Reactive Mode; deploy/README.md)',
    )
      .choices(['default', 'reactive'])
      .default('default'),
  )
  .option(
    '--resource-stabilization-timeout <ms>',
    'reactive mode: wait until no TaskManager joined for <ms> before scaling jobs up',
    positiveInt('--resource-stabilization-timeout'),
    3000,
  )
  .action(
    async (
      o: SecurityFlags & {
        host: string;
        rpcPort: number;
        webPort: number;
        webHost: string;
        webTokenFile?: string;
        webAuth: 'mutations' | 'reads';
        chaos: boolean;
        redis: string;
        checkpointInterval?: number;
        scheduler: 'default' | 'reactive';
        resourceStabilizationTimeout: number;
      },
    ) => {
      const { runJobManagerProcess } = await import('./processes.js');
      await runJobManagerProcess({ ...o, security: securityFlags(o) });
    },
  );

program
  .command('taskmanager')
  .description('run a TaskManager: offers slots (one worker thread each) to a JobManager and runs tasks')
  .option(...jmOption)
  .option('--slots <n>', 'task slots', positiveInt('--slots', 1), 1)
  .option('--host <addr>', 'address to bind the data/control server to', '127.0.0.1')
  .option('--advertise-host <addr>', 'address other processes use to reach this TaskManager (default: --host)')
  .option('--data-port <port>', 'data/control port; 0 = any free port', positiveInt('--data-port'), 0)
  .option('--id <id>', 'TaskManager id (default: random)')
  .action(async (o: SecurityFlags & Omit<TaskManagerProcessOptions, 'security'>) => {
    const { runTaskManagerProcess } = await import('./processes.js');
    await runTaskManagerProcess({ ...o, security: securityFlags(o) });
  });

program
  .command('submit')
  .description('validate a job spec (YAML or JSON) and submit it; prints the job id')
  .argument('<spec>', 'job spec file')
  .option(...jmOption)
  .option('-p, --parallelism <n>', 'override the job parallelism', positiveInt('--parallelism', 1))
  .option(
    '--set <path=value>',
    'override a spec value, e.g. --set steps[2].window.sizeMs=30000 (repeatable)',
    collect,
    [],
  )
  .option(
    '-s, --from-savepoint <id>',
    "start from a savepoint (or a failed job's retained checkpoint), as `fluxo savepoints` lists it; the parallelism may differ",
    savepointId,
  )
  .action(
    async (file: string, o: { jobmanager: string; parallelism?: number; set: string[]; fromSavepoint?: string }) => {
      const { loadSpec } = await import('./spec.js');
      const spec = loadSpec(file, o.set, o.parallelism);
      const client = jmClient(o);
      try {
        const { jobId } = await client.submit(spec, o.fromSavepoint ?? '');
        process.stdout.write(`${jobId}\n`);
      } finally {
        client.close();
      }
    },
  );

program
  .command('list')
  .description('list jobs')
  .option(...jmOption)
  .action(async (o: { jobmanager: string }) => {
    const client = jmClient(o);
    try {
      printJobs(await client.listJobs());
    } finally {
      client.close();
    }
  });

program
  .command('status')
  .description('show a job: state, tasks and counters')
  .argument('<job>', 'job id (a unique prefix of at least 4 characters is enough)')
  .option(...jmOption)
  .action(async (jobId: string, o: { jobmanager: string }) => {
    const client = jmClient(o);
    try {
      printJobStatus(await client.getJob(jobId));
    } finally {
      client.close();
    }
  });

program
  .command('cancel')
  .description('cancel a job')
  .argument('<job>', 'job id')
  .option(...jmOption)
  .action(async (jobId: string, o: { jobmanager: string }) => {
    const client = jmClient(o);
    try {
      const state = await client.cancel(jobId);
      process.stdout.write(`${state}\n`);
    } finally {
      client.close();
    }
  });

program
  .command('checkpoint')
  .description('trigger a checkpoint of a running job now and wait until it completes')
  .argument('<job>', 'job id')
  .option(...jmOption)
  .action(async (jobId: string, o: { jobmanager: string }) => {
    const client = jmClient(o);
    try {
      const c = await client.checkpoint(jobId);
      process.stdout.write(
        `checkpoint ${c.checkpointId} completed in ${c.durationMs} ms (${c.stateBytes} bytes of state)\n`,
      );
    } finally {
      client.close();
    }
  });

program
  .command('savepoint')
  .description(
    'take a savepoint of a running job and wait until it completes; it is kept until deleted. ' +
      'Prints only the savepoint id on stdout (details on stderr)',
  )
  .argument('<job>', 'job id')
  .option(...jmOption)
  .action(async (jobId: string, o: { jobmanager: string }) => {
    const client = jmClient(o);
    try {
      const r = await client.savepoint(jobId, false);
      process.stdout.write(`${r.savepoint.savepointId}\n`);
      process.stderr.write(`fluxo: ${savepointLine(r.savepoint)}\n`);
    } finally {
      client.close();
    }
  });

const savepoints = program
  .command('savepoints')
  .description("list savepoints and FAILED jobs' retained checkpoints (of every job, or of one with --job)")
  .option(...jmOption)
  .option('--job <job>', "only this job's")
  .action(async (o: { jobmanager: string; job?: string }) => {
    const client = jmClient(o);
    try {
      printSavepoints(await client.listSavepoints(o.job ?? ''));
    } finally {
      client.close();
    }
  });
savepoints
  .command('delete')
  .description("delete a savepoint or a FAILED job's retained checkpoint: its metadata and state")
  .argument('<savepoint>', 'savepoint id, as `fluxo savepoints` lists it')
  // --jobmanager belongs to `savepoints`, which commander lets appear after the subcommand too
  .action(async (id: string, _o: object, cmd: Command) => {
    const client = jmClient(cmd.optsWithGlobals() as { jobmanager: string } & SecurityFlags);
    try {
      await client.deleteSavepoint(id);
      process.stdout.write(`deleted savepoint ${id}\n`);
    } finally {
      client.close();
    }
  });

program
  .command('stop')
  .description(
    'stop a job gracefully with drain: sources end, every open window fires, sinks flush (Flink: stop --drain); ' +
      'with --savepoint: take a savepoint and stop at it, without firing windows, to resume later with submit --from-savepoint',
  )
  .argument('<job>', 'job id')
  .option(...jmOption)
  .option(
    '--savepoint',
    'stop with a savepoint instead of draining; prints only the savepoint id on stdout (details and the final state on stderr)',
  )
  .option('--no-wait', 'return at once instead of waiting until the job has ended')
  .action(async (jobId: string, o: { jobmanager: string; wait: boolean; savepoint?: boolean }) => {
    const client = jmClient(o);
    try {
      if (o.savepoint) {
        const r = await client.savepoint(jobId, true);
        process.stdout.write(`${r.savepoint.savepointId}\n`);
        process.stderr.write(`fluxo: ${savepointLine(r.savepoint)}\nfluxo: ${r.state}\n`);
        return;
      }
      let state = await client.stop(jobId);
      while (o.wait && !['FINISHED', 'FAILED', 'CANCELED'].includes(state)) {
        await new Promise((r) => setTimeout(r, 200));
        state = (await client.getJob(jobId)).job.state;
      }
      process.stdout.write(`${o.wait ? state : 'STOPPING'}\n`);
    } finally {
      client.close();
    }
  });

const ingest = program.command('ingest').description('bridge external sources into a Fluxo stream (Redis Streams)');
ingest
  .command('mqtt')
  .description(
    'subscribe to MQTT topics (QoS 1, persistent session) and append each reading to a stream; ' +
      'a message is acknowledged only once stored, duplicates are dropped; runs until SIGINT/SIGTERM',
  )
  .requiredOption('--topic <filter>', "topic filter with + levels, e.g. 'home/+/+/+/temperature'")
  .requiredOption('--stream <name>', 'stream to append to (fluxo:stream:<name>:<partition>)')
  .option('--broker <url>', 'MQTT broker URL', 'mqtt://127.0.0.1:1883')
  .option('--fields <names>', 'names of the + levels, comma-separated, e.g. house,room,sensor')
  .option('--value-field <name>', 'field a bare-number payload is stored under', 'value')
  .option('--key <field>', 'field that picks the partition (default: the last topic field)')
  .option('--partitions <n>', "the stream's partitions (fixed by its first writer)", positiveInt('--partitions', 1), 1)
  .option('--redis <url>', 'Redis URL (env REDIS_URL)', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  .option('--client-id <id>', 'MQTT client id of the persistent session (default fluxo-ingest-<stream>)')
  .option('--share <group>', 'MQTT 5 shared subscription group: bridges of one group split the messages')
  .action(
    async (o: {
      topic: string;
      stream: string;
      broker: string;
      fields?: string;
      valueField: string;
      key?: string;
      partitions: number;
      redis: string;
      clientId?: string;
      share?: string;
    }) => {
      const { ingestMqtt } = await import('./ingest-mqtt.js');
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      let last = 0;
      const stats = await ingestMqtt(
        {
          broker: o.broker,
          topic: o.topic,
          stream: o.stream,
          fields: o.fields?.split(',').map((f) => f.trim()),
          valueField: o.valueField,
          keyField: o.key,
          partitions: o.partitions,
          redisUrl: o.redis,
          clientId: o.clientId,
          shareGroup: o.share,
          log: createLogger('ingest'),
        },
        ac.signal,
        (s) => {
          if (Date.now() - last < 5000) return;
          last = Date.now();
          process.stderr.write(
            `fluxo ingest: ${s.stored} stored, ${s.duplicates} duplicates, ${s.rejected} rejected\n`,
          );
        },
      );
      process.stderr.write(
        `fluxo ingest: stopped; ${stats.stored} stored, ${stats.duplicates} duplicates, ${stats.rejected} rejected\n`,
      );
    },
  );

program
  .command('deadletters')
  .description("print a job's dead letters (rejected records with their reason) as JSON lines, oldest first")
  .argument('<job>', 'job id (a unique prefix of at least 4 characters is enough)')
  .option('--count <n>', 'only the last n dead letters (then --follow goes on)', positiveInt('--count', 1))
  .option('--follow', 'keep printing new dead letters until Ctrl-C')
  .option('--redis <url>', "Redis URL of a redis-stream output (default: the sink's url, else env REDIS_URL)")
  .option(...jmOption)
  .action(async (jobId: string, o: { count?: number; follow?: boolean; redis?: string; jobmanager: string }) => {
    const { deadLetterSinkOf, showDeadLetters } = await import('./deadletters.js');
    const client = jmClient(o);
    let details: Awaited<ReturnType<JobManagerClient['getJob']>>;
    try {
      details = await client.getJob(jobId);
    } finally {
      client.close();
    }
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    process.once('SIGTERM', () => ac.abort());
    await showDeadLetters(
      deadLetterSinkOf(details),
      { count: o.count, follow: o.follow, redisUrl: o.redis },
      ac.signal,
    );
  });

const alerts = program.command('alerts').description('alert queues (the bullmq sink)');
alerts
  .command('tail')
  .description('print the alerts of a BullMQ queue as JSON lines, then follow new ones (until Ctrl-C)')
  .argument('<queue>', 'queue name, as the bullmq sink names it')
  .option('--redis <url>', 'Redis URL of the queue (env REDIS_URL)', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  .option('--new-only', 'skip the alerts already in the queue')
  .action(async (queue: string, o: { redis: string; newOnly?: boolean }) => {
    const { tailAlerts } = await import('./alerts.js');
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    process.once('SIGTERM', () => ac.abort());
    await tailAlerts({ queue, redisUrl: o.redis, existing: !o.newOnly }, ac.signal);
  });

const chaos = program.command('chaos').description('inject failures to test recovery');
chaos
  .command('kill-taskmanager')
  .description('SIGKILL TaskManager processes the JobManager knows (on this host): one by --id, or --random')
  .option(...jmOption)
  .addOption(new Option('--id <id>', 'the TaskManager to kill').conflicts('random'))
  .addOption(
    new Option('--random', 'a random live TaskManager on this host (the default without --id)').conflicts('id'),
  )
  .option('--every <duration>', 'time between kills, e.g. 5s', '5s')
  .option('--count <n>', 'how many kills', positiveInt('--count', 1), 1)
  .action(async (o: { jobmanager: string; id?: string; random?: boolean; every: string; count: number }) => {
    const { killTaskManagers, parseDurationMs } = await import('./chaos.js');
    const client = jmClient(o);
    try {
      await killTaskManagers(
        client,
        { id: o.id, random: o.random, everyMs: parseDurationMs(o.every), count: o.count },
        (l) => process.stdout.write(`${l}\n`),
      );
    } finally {
      client.close();
    }
  });

program
  .command('taskmanagers')
  .description('list TaskManagers: id, address, slots used/total, last heartbeat')
  .option(...jmOption)
  .action(async (o: { jobmanager: string }) => {
    const client = jmClient(o);
    try {
      printTaskManagers(await client.listTaskManagers());
    } finally {
      client.close();
    }
  });

program
  .command('run')
  .description('run a job on a local mini-cluster (a JobManager plus N TaskManager processes) until it ends')
  .argument('<spec>', 'job spec file')
  .option('--taskmanagers <n>', 'TaskManager processes', positiveInt('--taskmanagers', 1), 2)
  .option('--slots <n>', 'slots per TaskManager', positiveInt('--slots', 1), 1)
  .option('-p, --parallelism <n>', 'override the job parallelism', positiveInt('--parallelism', 1))
  .option('--set <path=value>', 'override a spec value (repeatable)', collect, [])
  .option('--summary-json <file>', 'also write the summary as JSON to this file')
  .option('--timeout <ms>', 'fail if the job has not ended after this many ms (0 = never)', positiveInt('--timeout'), 0)
  .option(
    '--spares <n>',
    'extra TaskManagers; TaskManagers that die are replaced (watch a job survive `fluxo chaos`)',
    positiveInt('--spares'),
    0,
  )
  .action(
    async (
      file: string,
      o: {
        taskmanagers: number;
        slots: number;
        parallelism?: number;
        set: string[];
        summaryJson?: string;
        timeout: number;
        spares: number;
      },
    ) => {
      const { loadSpec } = await import('./spec.js');
      const { runMiniCluster } = await import('./mini-cluster.js');
      const spec = loadSpec(file, o.set, o.parallelism);
      process.exitCode = await runMiniCluster(spec, {
        taskmanagers: o.taskmanagers,
        slots: o.slots,
        summaryJson: o.summaryJson,
        timeoutMs: o.timeout,
        spares: o.spares,
      });
    },
  );

const redisOption = [
  '--redis <url>',
  'Redis URL (env REDIS_URL)',
  process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
] as const;
const streamFormat = (v: string): 'json' | 'csv' => {
  if (v === 'json' || v === 'jsonl' || v === 'csv') return v === 'csv' ? 'csv' : 'json';
  throw new InvalidArgumentError('--format must be json or csv');
};
const columnList = (v: string): string[] => v.split(',').map((c) => c.trim().replace(/:.*$/, ''));
interface StreamWriteFlags {
  partitions?: number;
  key?: string;
  format?: 'json' | 'csv';
  columns?: string[];
  delimiter: string;
  redis: string;
  batch: number;
}
function streamWriteOptions(c: Command): Command {
  return c
    .option(
      '--partitions <n>',
      "partitions (default: the stream's, or 1 for a new stream)",
      positiveInt('--partitions', 1),
    )
    .option('--key <field>', 'partition by this field (murmur3 of its value mod partitions); default round-robin')
    .option('--format <json|csv>', 'input format (default csv for .csv(.gz) files, else json lines)', streamFormat)
    .option('--columns <names>', 'csv column names, comma-separated (default: the first line is a header)', columnList)
    .option('--delimiter <char>', 'csv delimiter', ',')
    .option(...redisOption)
    .option('--batch <n>', 'records per pipeline (one round trip)', positiveInt('--batch', 1), 1000);
}

streamWriteOptions(
  program
    .command('produce')
    .description(
      'append CSV or JSON lines (stdin or a file, .gz ok) to a stream, fluxo:stream:<stream>:<partition>; prints the count',
    )
    .argument('<stream>', 'stream name')
    .argument('[file]', 'input file (default stdin)'),
).action(async (stream: string, file: string | undefined, o: StreamWriteFlags) => {
  const { produce } = await import('./streams.js');
  const r = await produce({ ...o, stream, file, redisUrl: o.redis });
  process.stderr.write(`appended ${r.appended} records to ${stream} (per partition: ${r.perPartition.join(', ')})\n`);
  process.stdout.write(`${r.appended}\n`);
});

streamWriteOptions(
  program
    .command('replay')
    .description(
      'replay a data set into a stream in event-time order at --speedup times real time (600 = 10 minutes of event time per second); progress on stderr',
    )
    .argument('<file>', 'CSV or JSON-lines file (.gz ok)')
    .requiredOption('--stream <name>', 'stream name')
    .requiredOption('--speedup <x>', 'event time per wall-clock time, e.g. 600', (v: string) => {
      const n = Number(v);
      if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('--speedup must be a positive number');
      return n;
    })
    .requiredOption('--time-field <field>', 'event-time field')
    .addOption(
      new Option('--time-unit <unit>', 'the field is a number of ms, s or us since the epoch').choices([
        'ms',
        's',
        'us',
      ]),
    )
    .option('--time-format <pattern>', 'the field is text in this Luxon format, e.g. "yyyy-MM-dd HH:mm:ss"')
    .option('--time-iso', 'the field is ISO 8601 text')
    .option('--time-zone <zone>', 'zone of text times without an offset', 'UTC'),
).action(
  async (
    file: string,
    o: StreamWriteFlags & {
      stream: string;
      speedup: number;
      timeField: string;
      timeUnit?: 'ms' | 's' | 'us';
      timeFormat?: string;
      timeIso?: boolean;
      timeZone: string;
    },
  ) => {
    const { replay } = await import('./streams.js');
    const r = await replay({ ...o, file, redisUrl: o.redis, progress: process.stderr });
    if (r.skipped > 0)
      process.stderr.write(`skipped ${r.skipped} lines without a valid event time (${r.firstSkipped})\n`);
    process.stderr.write(
      `replayed ${r.appended} records (${r.eventSpanMs / 1000} s of event time in ${r.wallMs / 1000} s) to ${o.stream} (per partition: ${r.perPartition.join(', ')})\n`,
    );
    process.stdout.write(`${r.appended}\n`);
  },
);

// TLS and cluster token: on the processes, and on every command that calls the JobManager
const commandAt = (...names: string[]): Command =>
  names.reduce<Command>((c, n) => c.commands.find((x) => x.name() === n) as Command, program);
for (const name of ['jobmanager', 'taskmanager']) securityOptions(commandAt(name), 'server');
for (const path of [
  ['submit'],
  ['list'],
  ['status'],
  ['cancel'],
  ['checkpoint'],
  ['savepoint'],
  ['savepoints'], // `savepoints delete` reads them with optsWithGlobals
  ['stop'],
  ['deadletters'],
  ['chaos', 'kill-taskmanager'],
  ['taskmanagers'],
])
  securityOptions(commandAt(...path), 'client');

function report(err: unknown): never {
  if (err instanceof EngineError || (err instanceof Error && typeof (err as EngineError).code === 'string')) {
    const e = err as EngineError;
    process.stderr.write(
      `fluxo: ${e.problems?.length ? `invalid job spec (${e.problems.length} problem${e.problems.length > 1 ? 's' : ''}):` : e.message}\n`,
    );
    for (const p of e.problems ?? []) process.stderr.write(`  - ${p}\n`);
    if (process.env.LOG_LEVEL === 'debug') createLogger('fluxo').debug({ err }, 'error detail');
  } else {
    process.stderr.write(`fluxo: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
}

// --wait polls the JobManager with the command's TLS and cluster token, like every other command
const scale: Command = registerScaleCommand(program, {
  jobManagerClient: async (address) => jmClient({ ...(scale.opts() as SecurityFlags), jobmanager: address }),
});
securityOptions(scale, 'client');

program.hook('preAction', (_program, actionCommand) => {
  running = actionCommand;
});
program.parseAsync(process.argv).catch(report);
