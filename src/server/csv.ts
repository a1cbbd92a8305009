/** RFC 4180 CSV: fields quoted when they hold a comma, quote or line break; quotes doubled; CRLF rows. */

export type CsvValue = string | number | boolean | null | undefined;

// Spreadsheets run a text cell that starts like a formula; a leading apostrophe makes it inert text.
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(value: CsvValue, { text = false } = {}): string {
  if (value === null || value === undefined) return '';
  let s = String(value);
  if (text && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV line (with CRLF). `textColumns` marks user-supplied columns guarded against formula injection. */
export function csvRow(values: CsvValue[], textColumns: ReadonlySet<number> = new Set()): string {
  return `${values.map((v, i) => csvField(v, { text: textColumns.has(i) })).join(',')}\r\n`;
}
