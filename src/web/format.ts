/** Pure formatting helpers, kept apart from the DOM so they can be unit-tested in Node. */
import { NOT_WHITE_CELLS } from '../model/differential.js';

/** No-break space: "87.3 %" must never wrap between number and sign. */
export const NBSP = '\u00a0';

/** 0.8734 → "87.3 %" (one decimal: enough to compare classes, not falsely precise). */
export function formatPercent(p: number, digits = 1): string {
  if (!Number.isFinite(p)) return '—';
  return `${(p * 100).toFixed(digits)}${NBSP}%`;
}

/**
 * A model's confidence wherever it is shown (result card, label on the image, cell lists, specimen tiles):
 * one format, so two places never disagree about one cell ("100 %" on the box beside "99.5 %" on the card).
 */
export function formatConfidence(p: number): string {
  return formatPercent(p);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO timestamp → "2024-05-03 14:07" in local time: unambiguous across locales. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const SPECIAL_LABELS: Record<string, string> = {
  ig: 'Immature granulocyte',
  other: 'Other white cell',
  not_a_white_cell: 'Not a white cell',
};

/** Model class names are often upper-case folder names ("NEUTROPHIL"); show them as words. */
export function displayLabel(label: string | null | undefined): string {
  if (!label) return 'No white cell found';
  const key = label.toLowerCase();
  if (SPECIAL_LABELS[key]) return SPECIAL_LABELS[key];
  const words = key.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Paging text: "21–40 of 57", "0 of 0" when empty. */
export function rangeText(offset: number, shown: number, total: number): string {
  if (total === 0 || shown === 0) return `0 of ${total}`;
  return `${offset + 1}–${offset + shown} of ${total}`;
}

export interface DifferentialRow {
  label: string;
  count: number;
  /** 0..100 */
  percent: number;
}

/**
 * Rows of a differential count in the model's class order, every class shown (a zero is information).
 * Percentages are recomputed from the counts so the table always adds up to its total.
 */
export function differentialRows(counts: Record<string, number>, classes: string[]): DifferentialRow[] {
  // White cells only: erythroblasts and platelets are reported beside the differential, not in it.
  const order = [...classes, ...Object.keys(counts).filter((c) => !classes.includes(c))].filter(
    (c) => !NOT_WHITE_CELLS.includes(c),
  );
  const total = order.reduce((sum, c) => sum + (counts[c] ?? 0), 0);
  return order.map((label) => {
    const count = counts[label] ?? 0;
    return { label, count, percent: total > 0 ? (count / total) * 100 : 0 };
  });
}

/** Probabilities in class order (model card order first), for a stable bar layout between images. */
export function orderedProbabilities(
  probabilities: Record<string, number>,
  classes: string[],
): { label: string; p: number }[] {
  const keys = [
    ...classes.filter((c) => c in probabilities),
    ...Object.keys(probabilities).filter((c) => !classes.includes(c)),
  ];
  return keys.map((label) => ({ label, p: probabilities[label] }));
}
