// How a CSV export's rows become text (cases-csv.ts), in one place: the same on the server's thread and in
// the formatting thread (csv-thread.ts), so where it runs never changes a byte.
import { stringify, type Options } from 'csv-stringify/sync';

export type CsvValue = string | number | boolean | null | undefined;

/**
 * Rows as RFC 4180 CSV (fields quoted when they hold a comma, quote or line break; each row ends in CRLF).
 * `textColumns`: the user-supplied columns, whose text is guarded against spreadsheet formulas.
 */
export function formatCsvRows(rows: CsvValue[][], textColumns: readonly number[]): string {
  const text = new Set(textColumns);
  const options: Options = {
    record_delimiter: 'windows',
    // A field with a lone CR or LF is quoted too (by default only one holding the whole CRLF is).
    quote_record_delimiter: true,
    cast: {
      boolean: (value) => String(value),
      // Spreadsheets run a text cell that starts like a formula; a leading apostrophe makes it inert text.
      // Only the user-supplied columns: the others are the server's own (ids, dates, class names, numbers).
      string: (value, context) =>
        !context.header && text.has(context.index) ? { value, escape_formulas: true } : value,
    },
  };
  return stringify(rows, options);
}
