#!/usr/bin/env node
// Make sure a Redis is reachable for the demo.
//
//   REDIS_URL=$(node scripts/ensure-redis.mjs [--pid-file FILE])
//
// Probes REDIS_URL (default redis://127.0.0.1:6379) with one PING (1 s, no retries). If it answers,
// prints that URL on stdout. If nothing answers on a loopback URL and redis-server is on PATH,
// starts a private, detached redis-server on a free port, says so on stderr (with its pid; stop it
// with `kill <pid>`), writes the pid to --pid-file if given, and prints its URL on stdout.
// Otherwise exits 1 with a message saying how to get Redis.
//
// The logic lives in core/config/local-redis.ts (shared with `fluxo run`); this script uses the
// compiled copy in dist/, so run `npm run build` first.
import { writeFileSync } from 'node:fs';

const modulePath = new URL('../dist/core/config/local-redis.js', import.meta.url);
let lib;
try {
  lib = await import(modulePath.href);
} catch (err) {
  process.stderr.write(
    `ensure-redis: cannot load ${modulePath.pathname} (${err.message}); run \`npm run build\` first\n`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const pidFileAt = args.indexOf('--pid-file');
const pidFile = pidFileAt >= 0 ? args[pidFileAt + 1] : undefined;
if ((pidFileAt >= 0 && !pidFile) || args.some((a, i) => a !== '--pid-file' && i !== pidFileAt + 1)) {
  process.stderr.write('usage: node scripts/ensure-redis.mjs [--pid-file FILE]\n');
  process.exit(2);
}

const url = process.env.REDIS_URL || lib.DEFAULT_REDIS_URL;
try {
  const redis = await lib.ensureRedis(url, (msg) => process.stderr.write(`${msg}\n`), { detached: true });
  if (redis.started) {
    process.stderr.write(`private redis-server pid ${redis.pid}; stop it with: kill ${redis.pid}\n`);
    if (pidFile) writeFileSync(pidFile, `${redis.pid}\n`);
  }
  process.stdout.write(`${redis.url}\n`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`ensure-redis: ${err.message}\n`);
  process.exit(1);
}
