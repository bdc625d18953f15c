/**
 * CSV cell splitting for one line (RFC 4180 quoting, any one-character delimiter).
 */

/**
 * Splits `line` at `delim` into `out` (cleared first; reuse one array for every line).
 * Returns null on success or a rejection reason.
 *
 * - Lines without `"` take a fast path (indexOf/slice, no regex).
 * - A cell that starts with `"` (after optional spaces) is quoted: `""` is an escaped quote, the
 *   delimiter may appear inside, and only spaces may follow the closing quote. Otherwise the
 *   line is rejected (`malformed quoted field 2`, `unterminated quoted field 3`), so a JSON
 *   object line is never half-parsed into cells.
 * - A `"` inside an unquoted cell is kept literally.
 * Cells are returned untrimmed; lines never contain `\n`.
 */
export function splitCells(line: string, delim: string, out: string[]): string | null {
  out.length = 0;
  if (line.indexOf('"') === -1) {
    let start = 0;
    for (;;) {
      const i = line.indexOf(delim, start);
      if (i === -1) {
        out.push(line.slice(start));
        return null;
      }
      out.push(line.slice(start, i));
      start = i + 1;
    }
  }
  return splitQuoted(line, delim, out);
}

function splitQuoted(line: string, delim: string, out: string[]): string | null {
  const n = line.length;
  const d = delim.charCodeAt(0);
  let i = 0;
  for (;;) {
    // skip leading spaces to look for an opening quote
    let j = i;
    while (j < n && line.charCodeAt(j) === 32 && d !== 32) j++;
    if (j < n && line.charCodeAt(j) === 34) {
      let cell = '';
      let k = j + 1;
      let closed = false;
      while (k < n) {
        const q = line.indexOf('"', k);
        if (q === -1) break;
        cell += line.slice(k, q);
        if (line.charCodeAt(q + 1) === 34) {
          cell += '"';
          k = q + 2;
          continue;
        }
        k = q + 1;
        closed = true;
        break;
      }
      if (!closed) return `unterminated quoted field ${out.length + 1}`;
      while (k < n && line.charCodeAt(k) === 32 && d !== 32) k++;
      out.push(cell);
      if (k >= n) return null;
      if (line.charCodeAt(k) !== d) return `malformed quoted field ${out.length}`;
      i = k + 1;
      continue;
    }
    const e = line.indexOf(delim, i);
    if (e === -1) {
      out.push(line.slice(i));
      return null;
    }
    out.push(line.slice(i, e));
    i = e + 1;
  }
}
