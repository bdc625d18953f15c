/**
 * The Fluxo CDK app: one FluxoStack (default name `Fluxo`, context `stackName`) with its settings
 * from CDK context (see lib/settings.ts, CONTEXT_KEYS, and deploy/README.md "AWS (CDK)").
 *
 * Two ways to run it:
 * - by the CDK CLI, from deploy/aws: `npx cdk deploy -c clientCidr=203.0.113.7/32` (cdk.json's
 *   `app` compiles deploy/aws and runs this file; the CLI passes the context in CDK_CONTEXT_JSON);
 * - directly, offline and without AWS credentials: `npm run cdk:synth -- -c clientCidr=…` (from the
 *   repository root). Then this file reads cdk.json's context and `-c key=value` / `--context
 *   key=value` arguments itself and writes the cloud assembly to deploy/aws/cdk.out.
 *
 * Exits 1 with one readable message per problem for invalid settings or a missing tarball.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { FluxoStack } from '../lib/fluxo-stack.js';
import { parseContextArgs, SettingsError, settingsFromContext } from '../lib/settings.js';

/** deploy/aws: the nearest folder above this file that has a cdk.json. */
function awsFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'cdk.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find deploy/aws/cdk.json above the Fluxo CDK app');
    dir = up;
  }
  return dir;
}

function main(): void {
  const dir = awsFolder();
  const direct = process.env.CDK_OUTDIR === undefined; // the CDK CLI always sets it
  const context: Record<string, unknown> = {};
  if (direct) {
    const cdkJson = JSON.parse(readFileSync(join(dir, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
    Object.assign(context, cdkJson.context, parseContextArgs(process.argv.slice(2)));
  }
  const app = new App(direct ? { outdir: join(dir, 'cdk.out'), context } : {});
  const get = (key: string): unknown => app.node.tryGetContext(key);

  const { version } = JSON.parse(readFileSync(join(dir, '..', '..', 'package.json'), 'utf8')) as { version: string };
  const input = settingsFromContext(get, join(dir, 'build', `fluxo-${version}.tgz`));
  input.fluxoTarball = resolve(input.fluxoTarball);
  if (!existsSync(input.fluxoTarball))
    throw new SettingsError([
      `fluxoTarball: no file ${input.fluxoTarball}; run \`npm run cdk:pack\` at the repository root (npm pack into deploy/aws/build/), or pass -c fluxoTarball=<path>`,
    ]);

  const stackName = String(get('stackName') ?? 'Fluxo');
  new FluxoStack(app, stackName, {
    ...input,
    description: 'Fluxo stream processing cluster: JobManager, TaskManager Auto Scaling group, Redis',
  });
  const assembly = app.synth();
  if (direct)
    process.stderr.write(
      `fluxo-aws: synthesized stack ${stackName} to ${relative(process.cwd(), assembly.directory) || '.'}/${stackName}.template.json\n`,
    );
}

try {
  main();
} catch (err) {
  process.stderr.write(`fluxo-aws: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
