/**
 * The container setup (Dockerfile, .dockerignore, deploy/docker-compose.yml and the files it
 * mounts), checked without a Docker engine: the files parse, the services and profiles are there,
 * every `fluxo` flag the compose file passes (commands and healthchecks) exists in that
 * subcommand's --help, every Fluxo container gets the required cluster token, the JobManager runs
 * reactive, ports agree, the image's ENTRYPOINT points at the build output and runs, and the
 * runtime needs no devDependency.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT, requireBuiltCli, runCli } from '../../support/processes.js';

interface Service {
  image?: string;
  build?: string;
  container_name?: string;
  ports?: string[];
  profiles?: string[];
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }> | string[];
  init?: boolean;
  volumes?: string[];
}

const read = (p: string): string => readFileSync(join(REPO_ROOT, p), 'utf8');
const compose = parse(read('deploy/docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const svc = compose.services;

/** The `fluxo` arguments of a service: its command, or the `exec node …/main.js …` of an `sh -c`. */
function fluxoArgs(s: Service): string[] {
  if (!s.entrypoint) return s.command ?? [];
  expect(s.entrypoint).toEqual(['/bin/sh', '-c']);
  const words = (s.command ?? []).join(' ').trim().split(/\s+/);
  expect(words.slice(0, 3)).toEqual(['exec', 'node', '/app/dist/client/main.js']);
  return words.slice(3);
}
/** The `fluxo` arguments of a CMD-SHELL healthcheck: `node /app/dist/client/main.js …` up to a pipe. */
function healthcheckArgs(s: Service): string[] {
  const test = s.healthcheck?.test ?? [];
  expect(test[0]).toBe('CMD-SHELL');
  const words = test[1].split('|')[0].trim().split(/\s+/);
  expect(words.slice(0, 2)).toEqual(['node', '/app/dist/client/main.js']);
  return words.slice(2);
}
const flags = (args: string[]): string[] => args.filter((a) => a.startsWith('--'));
/** The services that run the Fluxo image. */
const fluxoServices = Object.keys(svc).filter((name) => svc[name].image === 'fluxo:latest');
const flagValue = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];

const dockerfile = read('Dockerfile');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
const entrypoint = JSON.parse(
  instructions.find((l) => l.startsWith('ENTRYPOINT '))?.slice('ENTRYPOINT '.length) ?? '[]',
) as string[];

describe('deploy/docker-compose.yml', () => {
  it('has redis, mosquitto, jobmanager, taskmanager; prometheus and grafana only in the monitoring profile', () => {
    for (const name of ['redis', 'mosquitto', 'jobmanager', 'taskmanager']) {
      expect(svc[name], name).toBeDefined();
      expect(svc[name].profiles, name).toBeUndefined();
    }
    expect(svc.redis.image).toBe('redis:7');
    expect(svc.mosquitto.image).toBe('eclipse-mosquitto:2');
    expect(svc.prometheus.profiles).toEqual(['monitoring']);
    expect(svc.grafana.profiles).toEqual(['monitoring']);
    expect(svc.cli.profiles).toEqual(['cli']); // `docker compose run --rm cli …`, never started by `up`
  });

  it('runs the JobManager and TaskManagers from the one image built from the repo root', () => {
    for (const name of ['jobmanager', 'taskmanager', 'cli']) expect(svc[name].image, name).toBe('fluxo:latest');
    expect(svc.jobmanager.build).toBe('..');
    expect(svc.taskmanager.build).toBe('..');
    expect(existsSync(join(REPO_ROOT, 'deploy', svc.jobmanager.build ?? '', 'Dockerfile'))).toBe(true);
  });

  it('can scale the TaskManagers: no container_name and no host ports', () => {
    expect(svc.taskmanager.container_name).toBeUndefined();
    expect(svc.taskmanager.ports).toBeUndefined();
  });

  it('has a healthcheck on every long-running service and waits for healthy dependencies', () => {
    for (const name of ['redis', 'mosquitto', 'jobmanager', 'taskmanager'])
      expect(svc[name].healthcheck?.test.length, name).toBeGreaterThan(1);
    expect(svc.redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(svc.jobmanager.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
    expect(svc.taskmanager.depends_on).toMatchObject({ jobmanager: { condition: 'service_healthy' } });
  });

  it('binds the JobManager web server to 0.0.0.0 with a required token, and ports agree', () => {
    const jm = fluxoArgs(svc.jobmanager);
    const tm = fluxoArgs(svc.taskmanager);
    expect(jm[0]).toBe('jobmanager');
    expect(flagValue(jm, '--web-host')).toBe('0.0.0.0');
    expect(flagValue(jm, '--host')).toBe('0.0.0.0');
    expect(svc.jobmanager.environment?.FLUXO_WEB_TOKEN).toMatch(/^\$\{FLUXO_WEB_TOKEN:\?/); // no default token
    const webPort = flagValue(jm, '--web-port');
    const rpcPort = flagValue(jm, '--rpc-port');
    expect(svc.jobmanager.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${webPort}/overview`);
    expect(flagValue(tm, '--jobmanager')).toBe(`jobmanager:${rpcPort}`);
    expect(svc.cli.environment?.FLUXO_JOBMANAGER).toBe(`jobmanager:${rpcPort}`);
    expect(svc.taskmanager.healthcheck?.test.join(' ')).toContain(`jobmanager:${rpcPort}`);
    expect(svc.taskmanager.healthcheck?.test.join(' ')).toContain(`$$HOSTNAME:${flagValue(tm, '--data-port')}`);
    const prom = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    expect(prom.scrape_configs[0].metrics_path).toBe('/metrics');
    expect(prom.scrape_configs[0].static_configs[0].targets).toEqual([`jobmanager:${webPort}`]);
  });

  it('has TaskManagers listen on 0.0.0.0 and advertise their container hostname', () => {
    const tm = fluxoArgs(svc.taskmanager);
    expect(tm[0]).toBe('taskmanager');
    expect(flagValue(tm, '--host')).toBe('0.0.0.0');
    expect(flagValue(tm, '--advertise-host')).toBe('"$$HOSTNAME"'); // compose turns $$ into $
  });

  describe('uses only flags the fluxo subcommands have', () => {
    beforeAll(() => requireBuiltCli());
    // each command with the service whose environment it runs in
    const commands: Record<string, [string, () => string[]]> = {
      jobmanager: ['jobmanager', () => fluxoArgs(svc.jobmanager)],
      taskmanager: ['taskmanager', () => fluxoArgs(svc.taskmanager)],
      'taskmanager healthcheck': ['taskmanager', () => healthcheckArgs(svc.taskmanager)],
      'cli (default command)': ['cli', () => fluxoArgs(svc.cli)],
    };
    for (const [name, [service, argsOf]] of Object.entries(commands)) {
      it(`${name}: its flags, and the FLUXO_ variables of its environment`, async () => {
        const args = argsOf();
        const help = await runCli([args[0], '--help']);
        expect(help.code).toBe(0);
        for (const f of flags(args)) expect(help.stdout, f).toMatch(new RegExp(`(^|[\\s,])${f}\\b`, 'm'));
        const vars = Object.keys(svc[service].environment ?? {}).filter((v) => v.startsWith('FLUXO_'));
        expect(vars).toContain('FLUXO_CLUSTER_TOKEN'); // every one of these talks gRPC
        for (const v of vars) expect(help.stdout, v).toMatch(new RegExp(`\\b${v}\\b`));
      });
    }
    it('the JobManager runs the reactive scheduler, a choice of its --scheduler', async () => {
      const jm = fluxoArgs(svc.jobmanager);
      expect(flagValue(jm, '--scheduler')).toBe('reactive');
      const help = (await runCli(['jobmanager', '--help'])).stdout.replace(/\s+/g, ' ');
      expect(help).toMatch(/--scheduler <kind> .*\(choices: "default", "reactive"/);
    });
  });

  it('gives every Fluxo container the cluster token, required (no default), from one variable', () => {
    expect(fluxoServices.sort()).toEqual(['cli', 'jobmanager', 'taskmanager']);
    for (const name of fluxoServices) expect(svc[name].init, name).toBe(true); // SIGTERM reaches node
    const tokens = fluxoServices.map((name) => svc[name].environment?.FLUXO_CLUSTER_TOKEN);
    for (const [i, t] of tokens.entries()) expect(t, fluxoServices[i]).toMatch(/^\$\{FLUXO_CLUSTER_TOKEN:\?[^}]+\}$/);
    expect(new Set(tokens).size).toBe(1);
    // never put in a command line (it would show in `ps` and `docker inspect`)
    const raw = read('deploy/docker-compose.yml');
    expect(raw).not.toMatch(/--cluster-token\b(?!-file)/);
    for (const name of fluxoServices) expect(JSON.stringify(svc[name].command ?? []), name).not.toContain('TOKEN');
  });

  it('mounts existing files: mosquitto (anonymous on 1883), Prometheus, Grafana provisioning', () => {
    for (const s of Object.values(svc))
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0];
        if (host.startsWith('./')) expect(existsSync(join(REPO_ROOT, 'deploy', host)), v).toBe(true);
        else expect(compose.volumes, v).toHaveProperty(host);
      }
    const conf = read('deploy/mosquitto/mosquitto.conf');
    expect(conf).toMatch(/^listener 1883$/m);
    expect(conf).toMatch(/^allow_anonymous true$/m);
  });

  it("points the provisioned dashboard at the provisioned data source (the grafana service's sed)", () => {
    const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const providers = parse(read('deploy/grafana/provisioning/dashboards/fluxo.yml')) as {
      providers: { options: { path: string } }[];
    };
    const start = (svc.grafana.command ?? []).join(' ');
    expect(start).toContain(`> ${providers.providers[0].options.path}/fluxo-dashboard.json`);
    expect(start).toContain('exec /run.sh');
    // the same replacement as `sed 's/\${DS_PROMETHEUS}/<uid>/g'` (compose turns $$ into $)
    const m = /sed 's\/\\\$\$\{DS_PROMETHEUS\}\/([\w-]+)\/g'/.exec(start);
    expect(m?.[1]).toBe(ds.datasources[0].uid);
    const dash = read('deploy/grafana/fluxo-dashboard.json').replaceAll(/\$\{DS_PROMETHEUS\}/g, m?.[1] ?? '');
    const uids = [...dash.matchAll(/"uid": "([^"]*)"/g)].map((u) => u[1]).filter((u) => u !== 'fluxo-overview');
    expect(uids.length).toBeGreaterThan(10);
    expect(new Set(uids)).toEqual(new Set([ds.datasources[0].uid]));
  });
});

describe('Dockerfile', () => {
  it('builds in a node:20-slim stage and runs in another, as a non-root user', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms).toEqual(['FROM node:20-slim AS build', 'FROM node:20-slim AS runtime']);
    const build = instructions
      .slice(instructions.indexOf(froms[0]), instructions.indexOf(froms[1]))
      .filter((l) => l.startsWith('RUN '))
      .join('\n');
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm prune --omit=dev/);
    // `npm ci` builds through the prepare script (tsc + the Vite UI): once is enough
    expect(build).not.toMatch(/npm run build|--ignore-scripts/);
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.prepare).toMatch(
      /^npm run build\b/,
    );
    const users = instructions.filter((l) => l.startsWith('USER '));
    expect(users).toEqual(['USER node']);
    expect(instructions.indexOf('USER node')).toBeGreaterThan(instructions.indexOf('FROM node:20-slim AS runtime'));
    for (const what of ['package.json', 'node_modules', 'dist', 'proto', 'examples'])
      expect(dockerfile, what).toMatch(new RegExp(`^COPY --from=build /app/${what}\\b`, 'm'));
  });

  it('exposes the JobManager rpc/web ports and the TaskManager data port the compose file uses', () => {
    const exposed = (instructions.find((l) => l.startsWith('EXPOSE ')) ?? '').split(/\s+/).slice(1);
    const jm = fluxoArgs(svc.jobmanager);
    const tm = fluxoArgs(svc.taskmanager);
    expect(exposed.sort()).toEqual(
      [flagValue(jm, '--rpc-port'), flagValue(jm, '--web-port'), flagValue(tm, '--data-port')].sort(),
    );
    expect(exposed).toEqual(expect.arrayContaining(['6123', '8081'])); // the CLI defaults
  });

  it('has ENTRYPOINT node /app/dist/client/main.js (in the build output) and CMD --help', () => {
    requireBuiltCli();
    expect(entrypoint).toEqual(['node', '/app/dist/client/main.js']);
    expect(existsSync(join(REPO_ROOT, entrypoint[1].replace(/^\/app\//, '')))).toBe(true);
    expect(instructions).toContain('CMD ["--help"]');
  });

  it("runs the image's entry command directly: --help and jobmanager --help exit 0", async () => {
    requireBuiltCli();
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/jobmanager/);
    expect(top.stdout).toMatch(/taskmanager/);
    const jm = await runCli(['jobmanager', '--help']);
    expect(jm.code).toBe(0);
    expect(jm.stdout).toMatch(/--web-host/);
  });

  it('needs no devDependency at run time (dist/web is prebuilt)', () => {
    requireBuiltCli();
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const imported = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (p !== join(REPO_ROOT, 'dist/web')) walk(p);
        } else if (e.name.endsWith('.js')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/(?:from |import\()'([^'.][^']*)'/g)) {
            if (m[1].startsWith('node:')) continue;
            imported.add(m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0]);
          }
        }
      }
    };
    walk(join(REPO_ROOT, 'dist'));
    expect(imported.size).toBeGreaterThan(5);
    expect([...imported].filter((name) => !(name in pkg.dependencies))).toEqual([]);
    expect(existsSync(join(REPO_ROOT, 'dist/web/index.html'))).toBe(true);
  });
});

describe('.dockerignore', () => {
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  it('keeps node_modules, dist, .git and local output out of the build context', () => {
    for (const p of ['node_modules', 'dist', '.git', 'test-artifacts', 'bench/data', 'out', '*.log'])
      expect(ignored, p).toContain(p);
  });
  it('keeps what the build needs', () => {
    for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'scripts', 'web', 'proto', 'examples'])
      expect(ignored, p).not.toContain(p);
    for (const dir of ['client', 'core', 'jobmanager', 'taskmanager', 'bench']) expect(ignored, dir).not.toContain(dir);
  });
});
