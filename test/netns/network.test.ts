/**
 * The virtual network of test/support/netns.ts itself: hosts reach each other (and the test
 * process reaches them through the gateway), a cut drops packets silently (no error on an
 * established connection, a new connection hangs instead of being refused), a heal lets the same
 * connection carry on, and teardown and leftover clean-up leave nothing behind.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLeftovers, createNetwork, netnsUnavailable, type VirtualNetwork } from '../support/netns.js';
import type { ManagedProcess } from '../support/processes.js';
import { waitFor } from '../support/processes.js';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`SKIPPED test/netns/network.test.ts: ${unavailable}`);

/** A TCP server on `host:port` that answers each received chunk with `got <total bytes>\n`. */
const SERVER = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
net.createServer((s) => {
  let n = 0;
  s.on('data', (d) => { n += d.length; s.write('got ' + n + '\\n'); });
  s.on('error', () => {});
}).listen(Number(port), host, () => console.log('listening'));
`;

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

describe.skipIf(unavailable !== null)('virtual network (network namespaces, veth, one bridge)', () => {
  let net: VirtualNetwork;
  let server: ManagedProcess;

  beforeAll(async () => {
    net = await createNetwork(['a', 'b']);
    server = net.run('b', [process.execPath, '-e', SERVER, net.address('b'), '7000']);
    await server.waitForOutput(/listening/, 10_000);
  });

  afterAll(async () => {
    await net?.teardown();
  });

  it('gives each host its own namespace and address, loopback up, on one /24 with the gateway', async () => {
    const a = net.host('a');
    const b = net.host('b');
    expect(a.address).toMatch(/^10\.77\.\d+\.2$/);
    expect(b.address).toMatch(/^10\.77\.\d+\.3$/);
    expect(net.gateway).toBe(a.address.replace(/\.2$/, '.1'));
    const addrs = await net.exec('a', ['ip', '-o', '-4', 'addr', 'show']);
    expect(addrs.stdout).toMatch(/lo\s+inet 127\.0\.0\.1\/8/);
    expect(addrs.stdout).toContain(`eth0    inet ${a.address}/24`);
    // its own network stack: b's server is not listening in a's namespace
    expect((await net.pids('b')).includes(server.pid)).toBe(true);
    expect((await net.pids('a')).includes(server.pid)).toBe(false);
  });

  it('a cut drops packets silently; a heal resumes the same connection', async () => {
    const s = await open(net.address('b'), 7000); // from the root namespace, through the bridge
    let received = '';
    let error: Error | undefined;
    s.setEncoding('utf8').on('data', (d: string) => (received += d));
    s.on('error', (err) => (error = err));
    s.write('x'.repeat(10));
    await waitFor(() => received.includes('got 10\n'), { timeoutMs: 5000, message: 'no answer before the cut' });

    await net.cut('b');
    expect(net.isCut('b')).toBe(true);
    s.write('y'.repeat(5)); // queued by TCP, retransmitted into the void
    // a new connection is neither refused nor unreachable: its SYN just gets no answer
    const attempt = connect(7000, net.address('b'));
    let attemptOutcome = 'pending';
    attempt.once('connect', () => (attemptOutcome = 'connected'));
    attempt.once('error', (err) => (attemptOutcome = (err as NodeJS.ErrnoException).code ?? err.message));
    await new Promise((r) => setTimeout(r, 2000));
    expect(attemptOutcome).toBe('pending');
    expect(error).toBeUndefined();
    expect(received).not.toContain('got 15');
    attempt.destroy();

    await net.heal('b');
    await waitFor(() => received.includes('got 15\n'), {
      timeoutMs: 10_000,
      message: () => `the queued bytes did not arrive after the heal (received ${JSON.stringify(received)})`,
    });
    expect(error).toBeUndefined();
    s.destroy();
  });

  it('teardown kills the processes and removes namespaces and links; leftovers of dead runs are cleaned up', async () => {
    const extra = await createNetwork(['x']);
    const p = extra.run('x', ['sleep', '60']);
    await waitFor(async () => (await extra.pids('x')).length > 0, { timeoutMs: 5000, message: 'sleep not started' });
    expect(extra.leftovers().length).toBeGreaterThan(0);
    await extra.teardown();
    expect(p.exited).toBeDefined();
    expect(extra.leftovers()).toEqual([]);

    // a run killed before its teardown: its owner pid is dead
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    const ns = `fluxo-${dead.pid}-fx0badc0-x`;
    const { execFileSync } = await import('node:child_process');
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['link', 'add', 'fx0badc0br', 'type', 'bridge']);
    execFileSync('ip', ['link', 'set', 'fx0badc0br', 'alias', `fluxo-test pid=${dead.pid}`]);
    const removed = cleanupLeftovers();
    expect(removed).toEqual(expect.arrayContaining([`netns ${ns}`, 'link fx0badc0br']));
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(ns);
    // the live network of this file is not touched
    expect(net.leftovers().length).toBeGreaterThan(0);
  });
});
