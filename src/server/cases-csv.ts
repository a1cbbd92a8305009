import type { Box } from '../imaging/types.js';
import type { Prediction } from '../model/types.js';
import { csvRow, type CsvValue } from './csv.js';
import type { CaseFilter, CaseStore } from './store/index.js';

/**
 * Every matching case as CSV: one row per located cell (a field's second cell is a row of its own); an image
 * without cells (none found, or a whole-image model) is one row with the cell columns empty. One probability
 * column per class of the model, then the classes only older cases know.
 */
export function casesCsv(store: CaseStore, classes: string[], filter: CaseFilter): string {
  const known = new Set(classes);
  const probClasses = [...classes, ...store.probabilityClasses().filter((c) => !known.has(c))];
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
    'tta',
  ];
  const textColumns = new Set(['file', 'reviewer', 'note'].map((h) => header.indexOf(h)));
  const lines = [csvRow(header)];
  for (const c of store.iterate(filter)) {
    const rows: {
      index: number | null;
      box: Box | null;
      p: Omit<Prediction, 'label'> & { label: string | null };
    }[] =
      c.cells.length > 0
        ? c.cells.map((cell, i) => ({ index: i + 1, box: cell.box, p: cell }))
        : [{ index: null, box: null, p: c }];
    for (const { index, box, p } of rows) {
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
        c.review?.label,
        c.review?.reviewer,
        c.review?.reviewedAt,
        c.review?.note,
        c.model.name,
        c.model.version,
        c.model.tta,
      ];
      lines.push(csvRow(row, textColumns));
    }
  }
  return lines.join('');
}
