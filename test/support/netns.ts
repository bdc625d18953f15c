/**
 * A small virtual network for multi-host tests: one Linux network namespace per host, each with
 * its own address on a private /24, all plugged into one bridge in the root namespace (which has
 * the gateway address `.1`, so the test process itself can reach every host, e.g. the JobManager's
 * REST API). Needs root and iproute2's `ip` (CI: .ci/run installs iproute2 when it is missing);
 * {@link netnsUnavailable} says why not, for a visible skip.
 *
 * ```ts
 * const net = await createNetwork(['redis', 'jm', 'tm-1']);
 * const jm = net.fluxo('jm', ['jobmanager', '--host', '0.0.0.0', ...]);   // runs inside namespace `jm`
 * net.address('jm');   // 10.77.<n>.3
 * await net.cut('tm-1'); ...; await net.heal('tm-1');
 * await net.teardown();  // afterAll: kills every process of every namespace, deletes namespaces and links
 * ```
 *
 * Layout (`<id>` = `fx` + 6 random hex digits, `<n>` a free third octet):
 * ```
 * root ns:  bridge <id>br (10.77.<n>.1/24, alias "fluxo-test pid=<owner pid>")
 *             ├─ veth <id>h1 ── eth0 in ns fluxo-<pid>-<id>-<host 1>   10.77.<n>.2
 *             ├─ veth <id>h2 ── eth0 in ns fluxo-<pid>-<id>-<host 2>   10.77.<n>.3
 *             └─ …
 * ```
 *
 * How a partition is made, and why: `cut(host)` sets the host's bridge-side veth end down. The
 * bridge stops forwarding to and from that port and the host's own eth0 loses its carrier, so every
 * packet between the host and the rest is dropped without a word: no RST, no ICMP, no error on
 * send. The host's address and routes stay in place, so neither side's kernel tells the
 * application anything (a host-side `ip link set eth0 down` would instead remove the route and
 * fail sends at once with ENETUNREACH, which no real partition does). Every namespace (and the
 * root namespace) has PERMANENT neighbour entries for all addresses, so no ARP is needed: without
 * them, failed ARP resolution would turn the silence into "no route to host" for new connections
 * after ~3 s. The result is what a partition looks like on EC2 (the VPC answers ARP itself) or
 * behind a failed switch: established TCP connections retransmit into the void, new connections
 * hang in SYN-SENT, and only timeouts (heartbeats, gRPC keepalive, TCP's own) can notice.
 * `heal(host)` sets the port up again: the same connections resume (TCP retransmits what was
 * queued) unless a timeout closed them meanwhile. `tc netem loss 100%` would model the same but
 * needs sch_netem, which kernels without modules (like our CI's) lack; iptables/nft DROP rules
 * need another package; the link is enough.
 *
 * Clean-up: `teardown()` SIGKILLs every process in the namespaces (`ip netns pids`, so also what
 * they started), deletes the namespaces (which deletes their veth pairs) and the bridge, and waits
 * until the links are gone; it is idempotent and also runs from a process 'exit' hook. Every
 * `createNetwork` first removes leftovers of killed runs ({@link cleanupLeftovers}): namespaces and
 * bridges whose owner pid (in the namespace name, in the bridge alias) is no longer alive.
 */
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { CLI, ManagedProcess, REPO_ROOT, requireBuiltCli, signalGroup } from './processes.js';

/** Prefix of every namespace this helper creates: `fluxo-<owner pid>-<id>-<host>`. */
const NS_PREFIX = 'fluxo-';
const NS_RE = /^fluxo-(\d+)-(fx[0-9a-f]{6})-/;
const ALIAS_RE = /^fluxo-test pid=(\d+)$/;
/** A locally administered unicast MAC no host of any network has (see `cutBetween`). */
const NOBODY = '02:00:00:00:00:00';

/**
 * Why multi-host tests cannot run here, or null when they can: they need Linux, root (network
 * namespaces and links need CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's `ip`.
 */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  const uid = process.getuid?.();
  if (uid !== 0) return `network namespaces need root; running as uid ${uid}`;
  const r = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (r.error)
    return `iproute2's \`ip\` is not installed (${(r.error as NodeJS.ErrnoException).code}): apt-get install -y iproute2 (.ci/run installs it)`;
  return null;
}

/** Runs `ip <args>`; resolves its stdout, rejects with its stderr. */
function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** `ip <args>`, synchronously, errors ignored (for the exit hook and best-effort clean-up). */
function ipQuiet(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Names of all network namespaces (`ip netns list` prints `name (id: n)` lines). */
function namespaces(): string[] {
  return ipQuiet(['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n !== undefined && n !== '');
}

/** SIGKILLs every process in namespace `ns`, then deletes it. Never throws. */
function killAndDeleteNamespace(ns: string): void {
  for (const pid of ipQuiet(['netns', 'pids', ns])
    .split(/\s+/)
    .filter((p) => /^\d+$/.test(p))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  ipQuiet(['netns', 'del', ns]);
}

/** Links of the root namespace whose name starts with `prefix`. */
function linksStartingWith(prefix: string): string[] {
  try {
    return readdirSync('/sys/class/net').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/**
 * Removes namespaces and bridges of this helper whose owner process is dead (a run killed before
 * its teardown). Returns what it removed. Never throws.
 */
export function cleanupLeftovers(): string[] {
  const removed: string[] = [];
  for (const ns of namespaces()) {
    const m = NS_RE.exec(ns);
    if (m && !alive(Number(m[1]))) {
      killAndDeleteNamespace(ns);
      removed.push(`netns ${ns}`);
    }
  }
  for (const link of linksStartingWith('fx')) {
    let alias = '';
    try {
      alias = readFileSync(`/sys/class/net/${link}/ifalias`, 'utf8').trim();
    } catch {
      continue;
    }
    const m = ALIAS_RE.exec(alias);
    if (m && !alive(Number(m[1]))) {
      ipQuiet(['link', 'del', link]);
      removed.push(`link ${link}`);
    }
  }
  return removed;
}

export interface NetHost {
  name: string;
  /** the namespace, `fluxo-<pid>-<id>-<name>` */
  ns: string;
  /** its IPv4 address, e.g. `10.77.12.2` */
  address: string;
  mac: string;
  /** the veth end in the root namespace, plugged into the bridge (what `cut` sets down) */
  port: string;
}

const live = new Set<VirtualNetwork>();
process.once('exit', () => {
  for (const n of live) n.teardownSync();
});

/**
 * Builds the network of `hosts` (names `[A-Za-z0-9_.-]`, at most 200) on a free 10.77.<n>.0/24.
 * @throws Error when `ip` fails (after removing whatever it had built)
 */
export async function createNetwork(hosts: string[]): Promise<VirtualNetwork> {
  const why = netnsUnavailable();
  if (why) throw new Error(why);
  if (hosts.length === 0 || hosts.length > 200) throw new Error(`1..200 hosts, got ${hosts.length}`);
  for (const h of hosts) if (!/^[A-Za-z0-9_.-]+$/.test(h)) throw new Error(`bad host name ${JSON.stringify(h)}`);
  if (new Set(hosts).size !== hosts.length) throw new Error(`duplicate host names in ${hosts.join(', ')}`);
  cleanupLeftovers();
  for (let attempt = 1; ; attempt++) {
    const octet = freeOctet();
    const net = new VirtualNetwork(`fx${randomBytes(3).toString('hex')}`, octet, hosts);
    live.add(net);
    try {
      await net.build();
      return net;
    } catch (err) {
      await net.teardown();
      // another run took the same subnet at the same moment: try another one
      if (attempt < 3 && /subnet .* in use/.test((err as Error).message)) continue;
      throw err;
    }
  }
}

/** A third octet n such that no address of the root namespace is in 10.77.n.0/24. */
function freeOctet(): number {
  const used = new Set<number>();
  for (const m of ipQuiet(['-o', '-4', 'addr', 'show']).matchAll(/inet 10\.77\.(\d+)\./g)) used.add(Number(m[1]));
  const free = Array.from({ length: 256 }, (_, i) => i).filter((i) => !used.has(i));
  if (free.length === 0) throw new Error('no free 10.77.n.0/24 subnet in the root namespace');
  return free[randomBytes(2).readUInt16BE(0) % free.length] as number;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Env for child processes: the test's env without inherited Fluxo settings, LOG_LEVEL warn, plus `extra`. */
function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  for (const k of Object.keys(env)) if (k.startsWith('FLUXO_') || k === 'REDIS_URL') delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export class VirtualNetwork {
  /** the bridge in the root namespace */
  readonly bridge: string;
  /** `10.77.<n>.0/24` */
  readonly subnet: string;
  /** the bridge's address in the root namespace, `10.77.<n>.1`: how the test process reaches the hosts */
  readonly gateway: string;
  private readonly hosts = new Map<string, NetHost>();
  private readonly processes = new Set<ManagedProcess>();
  private readonly down = new Set<string>();
  private tornDown = false;

  constructor(
    /** `fx` + 6 hex digits: prefix of every link of this network */
    readonly id: string,
    octet: number,
    names: string[],
  ) {
    this.bridge = `${id}br`;
    this.subnet = `10.77.${octet}.0/24`;
    this.gateway = `10.77.${octet}.1`;
    names.forEach((name, i) => {
      this.hosts.set(name, {
        name,
        ns: `${NS_PREFIX}${process.pid}-${id}-${name}`,
        address: `10.77.${octet}.${i + 2}`,
        mac: `02:77:${hex(octet)}:00:00:${hex(i + 2)}`,
        port: `${id}h${i + 1}`,
      });
    });
  }

  /** @internal creates the bridge, namespaces, veth pairs, addresses and neighbour entries */
  async build(): Promise<void> {
    const octet = this.gateway.split('.')[2];
    const bridgeMac = `02:77:${hex(Number(octet))}:00:00:01`;
    await ip(['link', 'add', this.bridge, 'address', bridgeMac, 'type', 'bridge']);
    await ip(['link', 'set', this.bridge, 'alias', `fluxo-test pid=${process.pid}`]);
    await ip(['addr', 'add', `${this.gateway}/24`, 'dev', this.bridge]);
    await ip(['link', 'set', this.bridge, 'up']);
    const clash = (await ip(['-o', '-4', 'addr', 'show', 'to', this.subnet])).split('\n').filter((l) => l.trim());
    if (clash.length > 1) throw new Error(`subnet ${this.subnet} in use: ${clash.join(' | ')}`);
    for (const h of this.hosts.values()) {
      await ip(['netns', 'add', h.ns]);
      await ip(['link', 'add', h.port, 'type', 'veth', 'peer', 'name', 'eth0', 'address', h.mac, 'netns', h.ns]);
      await ip(['link', 'set', h.port, 'master', this.bridge]);
      await ip(['link', 'set', h.port, 'up']);
      await ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', h.ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      await ip(['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    }
    // permanent neighbours everywhere: a cut link drops packets silently instead of failing ARP
    const all = [...this.hosts.values()];
    for (const h of all) {
      for (const o of all)
        if (o !== h)
          await ip(['-n', h.ns, 'neigh', 'replace', o.address, 'lladdr', o.mac, 'dev', 'eth0', 'nud', 'permanent']);
      await ip(['-n', h.ns, 'neigh', 'replace', this.gateway, 'lladdr', bridgeMac, 'dev', 'eth0', 'nud', 'permanent']);
      await ip(['neigh', 'replace', h.address, 'lladdr', h.mac, 'dev', this.bridge, 'nud', 'permanent']);
    }
  }

  host(name: string): NetHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} in this network (${[...this.hosts.keys()].join(', ')})`);
    return h;
  }

  /** The host's IPv4 address. */
  address(name: string): string {
    return this.host(name).address;
  }

  /**
   * Starts `argv` inside the host's namespace (`ip netns exec <ns> argv…`, which execs, so the pid
   * is the program's own), as a process-group leader, with the repository as working directory
   * and the test's env minus FLUXO_* and REDIS_URL, plus `env`. The filesystem is shared by all
   * namespaces: paths mean the same in every host.
   */
  run(name: string, argv: string[], env: Record<string, string | undefined> = {}, label = name): ManagedProcess {
    if (this.tornDown) throw new Error('the network was torn down');
    const h = this.host(name);
    const child: ChildProcess = spawn('ip', ['netns', 'exec', h.ns, ...argv], {
      env: childEnv(env),
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const p = new ManagedProcess(label, child);
    this.processes.add(p);
    return p;
  }

  /** `fluxo <args>` (the built CLI, dist/client/main.js) inside the host's namespace. */
  fluxo(name: string, args: string[], env: Record<string, string | undefined> = {}, label = name): ManagedProcess {
    requireBuiltCli();
    return this.run(name, [process.execPath, CLI, ...args], env, label);
  }

  /** Runs `argv` to its end inside the host's namespace; resolves exit code and output (15 s timeout). */
  exec(name: string, argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const h = this.host(name);
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', h.ns, ...argv], { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  /** Cuts the host off: its bridge port goes down, every packet to and from it is dropped silently. */
  async cut(name: string): Promise<void> {
    await ip(['link', 'set', this.host(name).port, 'down']);
    this.down.add(name);
  }

  /** Restores the host's link (its bridge port up again). */
  async heal(name: string): Promise<void> {
    await ip(['link', 'set', this.host(name).port, 'up']);
    this.down.delete(name);
  }

  isCut(name: string): boolean {
    return this.down.has(name);
  }

  /**
   * Cuts only the path between hosts `a` and `b` (both keep their link to everyone else): each
   * one's neighbour entry for the other points to a MAC address nobody has, so the bridge floods
   * their frames to ports that drop them. As silent as {@link cut}: no error, no ICMP.
   */
  async cutBetween(a: string, b: string): Promise<void> {
    const ha = this.host(a);
    const hb = this.host(b);
    await ip(['-n', ha.ns, 'neigh', 'replace', hb.address, 'lladdr', NOBODY, 'dev', 'eth0', 'nud', 'permanent']);
    await ip(['-n', hb.ns, 'neigh', 'replace', ha.address, 'lladdr', NOBODY, 'dev', 'eth0', 'nud', 'permanent']);
  }

  /** Restores the path between `a` and `b` (their true neighbour entries). */
  async healBetween(a: string, b: string): Promise<void> {
    const ha = this.host(a);
    const hb = this.host(b);
    await ip(['-n', ha.ns, 'neigh', 'replace', hb.address, 'lladdr', hb.mac, 'dev', 'eth0', 'nud', 'permanent']);
    await ip(['-n', hb.ns, 'neigh', 'replace', ha.address, 'lladdr', ha.mac, 'dev', 'eth0', 'nud', 'permanent']);
  }

  /** Pids of every process inside the host's namespace (`ip netns pids`). */
  async pids(name: string): Promise<number[]> {
    const out = await ip(['netns', 'pids', this.host(name).ns]);
    return out
      .split(/\s+/)
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
  }

  /**
   * Kills every process of every namespace (SIGKILL), deletes the namespaces (and so their veth
   * pairs) and the bridge, and waits (≤ 5 s) until the links are gone. Idempotent; never throws.
   */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    for (const p of this.processes) signalGroup(p.child, 'SIGKILL');
    this.teardownSync();
    await Promise.race([
      Promise.all([...this.processes].map((p) => (p.exited ? undefined : p.waitForExit()))),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    const deadline = Date.now() + 5000;
    while (linksStartingWith(this.id).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  /** @internal the synchronous part of teardown (also the exit hook's) */
  teardownSync(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    live.delete(this);
    for (const p of this.processes) signalGroup(p.child, 'SIGKILL');
    for (const h of this.hosts.values()) if (existsSync(`/run/netns/${h.ns}`)) killAndDeleteNamespace(h.ns);
    for (const link of linksStartingWith(this.id)) ipQuiet(['link', 'del', link]);
  }

  /** Namespaces and links of this network still present (empty after teardown). */
  leftovers(): string[] {
    const mine = namespaces().filter((n) => n.startsWith(`${NS_PREFIX}${process.pid}-${this.id}-`));
    return [...mine.map((n) => `netns ${n}`), ...linksStartingWith(this.id).map((l) => `link ${l}`)];
  }
}
