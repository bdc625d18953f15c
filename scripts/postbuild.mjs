// Runs after `tsc` in `npm run build`: makes the CLI entry point executable.
// tsc keeps the `#!/usr/bin/env node` first line of client/main.ts; if it is missing, add it here
// (and warn: the line then shifts main.js's source map by one line).
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

const SHEBANG = '#!/usr/bin/env node';
const cli = new URL('../dist/client/main.js', import.meta.url);
if (existsSync(cli)) {
  const text = readFileSync(cli, 'utf8');
  if (!text.startsWith('#!')) {
    process.stderr.write(
      `postbuild: dist/client/main.js had no shebang; added "${SHEBANG}" (put it in client/main.ts)\n`,
    );
    writeFileSync(cli, `${SHEBANG}\n${text}`);
  }
  chmodSync(cli, 0o755);
}
