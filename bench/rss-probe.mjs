// Preloaded by bench/bench.mjs into every Node process of a measured run (NODE_OPTIONS=--import):
// on exit, appends `{pid, argv, maxRssKiB, cpuUserUs, cpuSysUs}` (getrusage: the process's exact
// peak RSS and CPU time, all threads) as a JSON line to $FLUXO_BENCH_RSS_FILE. This complements the harness's /proc VmHWM polling, which
// can miss growth in a child's last sampling interval before it exits.
import { appendFileSync } from 'node:fs';

const file = process.env.FLUXO_BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    try {
      const u = process.resourceUsage(); // RUSAGE_SELF: every thread of the process
      const line = {
        pid: process.pid,
        argv: process.argv.slice(1),
        maxRssKiB: u.maxRSS,
        cpuUserUs: u.userCPUTime,
        cpuSysUs: u.systemCPUTime,
      };
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    } catch {
      // measurement only: never disturb the process
    }
  });
}
