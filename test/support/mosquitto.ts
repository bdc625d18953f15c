/**
 * A private Mosquitto broker for integration tests: one `mosquitto` process on a free loopback
 * port, anonymous access, no persistence, its own temp dir, stopped (SIGTERM, then SIGKILL) by
 * `stop()`.
 *
 * ```ts
 * let broker: TestMosquitto;
 * beforeAll(async () => { broker = await startMosquitto(); });
 * afterAll(() => broker?.stop());
 * ```
 * The system service on 1883 is never used, so tests cannot disturb it or each other.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './processes.js';

export interface TestMosquitto {
  /** `mqtt://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** kills the broker and removes its temp dir; idempotent */
  stop(): Promise<void>;
}

/** The mosquitto binary: on PATH, or Debian's /usr/sbin/mosquitto; null when not installed. */
export function mosquittoBinary(): string | null {
  for (const candidate of ['mosquitto', '/usr/sbin/mosquitto']) {
    try {
      execFileSync(candidate, ['-h'], { stdio: 'ignore', timeout: 5000 });
      return candidate;
    } catch (err) {
      // `mosquitto -h` exits 3 after printing its help: it exists
      if ((err as { status?: number }).status !== undefined && (err as { code?: string }).code !== 'ENOENT')
        return candidate;
    }
  }
  return null;
}

/**
 * Starts a private broker and resolves once its port accepts connections (within 10 s).
 * @throws Error when mosquitto is not installed (saying how to install it) or does not start
 */
export async function startMosquitto(): Promise<TestMosquitto> {
  const bin = mosquittoBinary();
  if (!bin)
    throw new Error(
      'MQTT integration tests need mosquitto (Debian/Ubuntu: apt-get install -y mosquitto). .ci/run installs it on CI.',
    );
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fluxo-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  // max_queued_messages 0: no cap on what the broker queues for an offline persistent session
  // (Mosquitto's default, 1000, drops QoS 1 messages beyond it while a subscriber is away)
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'max_queued_messages 0', ''].join('\n'),
  );
  const child: ChildProcess = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error(`mosquitto exited at start:\n${stderr}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within 10 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let stopped = false;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!exited) {
        const gone = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
