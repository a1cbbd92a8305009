import type { Box } from '../imaging/types.js';
import type { Prediction } from '../model/types.js';
import { Readable } from 'node:stream';
import { formatCsvRows, type CsvValue } from './csv-format.js';
import type { CsvFormat } from './csv-thread.js';
import type { CaseFilter, CaseStore, Review, StoredCase } from './store/index.js';

/** Cases formatted per batch: between two turns of the event loop, and per call to the formatting thread. */
const BATCH_CASES = 20;

/**
 * Every matching case as RFC 4180 CSV (fields quoted when they hold a comma, quote or line break; CRLF rows): one row per located cell (a field's second cell is a row of its own); an image
 * without cells (none found, or a whole-image model) is one row with the cell columns empty. The review
 * columns are the row's cell's latest review; the specimen column the lab's id of the image's specimen. One probability
 * column per class of the model, then the classes only older cases know.
 *
 * Streamed: rows are written as the store yields its pages of cases, so exporting 14k cases
 * never holds the event loop for the whole file (nor the whole file in memory). A failure half-way cuts the
 * download short rather than sending a partial file as complete.
 */
export async function casesCsvStream(
  store: CaseStore,
  classes: string[],
  filter: CaseFilter,
  o: {
    /** Called with the number of cases written so far, after each one (an export job's progress). */
    onCase?: (written: number) => void;
    /** The rows become text there (a server's low-priority thread, csv-thread.ts), not on this thread. */
    formatter?: CsvFormat;
  } = {},
): Promise<Readable> {
  const known = new Set(classes);
  const probClasses = [...classes, ...(await store.probabilityClasses()).filter((c) => !known.has(c))];
  const header = [
    'id',
    'file',
    'createdAt',
    'cell',
    'x',
    'y',
    'width',
    'height',
    'label',
    'confidence',
    'needsReview',
    'reviewReasons',
    ...probClasses.map((c) => `p_${c}`),
    'imageLabel',
    'imageNeedsReview',
    'reviewLabel',
    'reviewer',
    'reviewedAt',
    'note',
    'modelName',
    'modelVersion',
    'modelSha256',
    'tta',
    'specimen',
  ];
  const textColumns = ['file', 'reviewer', 'note', 'specimen'].map((h) => header.indexOf(h));
  const format = async (rows: CsvValue[][]): Promise<string> => {
    if (o.formatter) return o.formatter.format(rows, textColumns);
    // Other requests get the event loop between batches, not only between the store's pages of 200: each
    // of their steps would otherwise wait behind a whole page.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return formatCsvRows(rows, textColumns);
  };
  async function* text(): AsyncGenerator<string> {
    let rows: CsvValue[][] = [header];
    let n = 0;
    for await (const c of store.iterate(filter)) {
      rows.push(...rowsOf(c));
      o.onCase?.(++n);
      if (n % BATCH_CASES === 0) {
        yield await format(rows);
        rows = [];
      }
    }
    if (rows.length > 0) yield await format(rows);
  }
  const rowsOf = (c: StoredCase): CsvValue[][] => {
    const out: CsvValue[][] = [];
    const rows: {
      index: number | null;
      box: Box | null;
      p: Omit<Prediction, 'label'> & { label: string | null };
      review: Review | null;
    }[] =
      c.cells.length > 0
        ? c.cells.map((cell, i) => ({ index: i + 1, box: cell.box, p: cell, review: cell.review }))
        : [{ index: null, box: null, p: c, review: c.review }];
    for (const { index, box, p, review } of rows) {
      const row: CsvValue[] = [
        c.id,
        c.file,
        c.createdAt,
        index,
        box?.x,
        box?.y,
        box?.width,
        box?.height,
        p.label,
        p.confidence,
        p.needsReview,
        p.reviewReasons.join(' '),
        ...probClasses.map((k) => p.probabilities[k]),
        c.label,
        c.needsReview,
        review?.label,
        review?.reviewer,
        review?.reviewedAt,
        review?.note,
        c.model.name,
        c.model.version,
        c.model.sha256,
        c.model.tta,
        c.specimenId,
      ];
      out.push(row);
    }
    return out;
  };
  return Readable.from(text(), { objectMode: false });
}
