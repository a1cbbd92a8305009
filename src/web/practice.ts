/** Practice mode logic, free of the DOM so it can be unit-tested in Node: pool, order, rounds and scores. */
import type { CaseQuery, CaseResult, CellResult, TeachingCellResult, TeachingSet } from './api.js';
import { NBSP } from './format.js';

export const ROUND_SIZE = 10;
/** The largest page GET /cases allows. */
export const POOL_PAGE_SIZE = 200;

/** The project's one seeded generator (mulberry32), under the name this module's callers use. */
import { createRng as seededRandom, shuffled } from '../imaging/random.js';
export { seededRandom };

/** Fisher–Yates with the seeded generator; the input is left untouched. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  return shuffled(items, seededRandom(seed));
}

/**
 * A question needs a reviewer's label the student can pick: reviews outside the model's classes ('other',
 * 'not_a_white_cell', or a class an older model had) have no answer button, so they are left out.
 */
export function isPracticeCase(c: CaseResult, classes: readonly string[]): boolean {
  return !!c.review && classes.includes(c.review.label);
}

export interface Pool {
  cases: CaseResult[];
  /** Reviewed cases left out because their reviewer's label is not one of the classes. */
  excluded: number;
  /** How many of `cases` come from the bundled teaching set (the rest are reviewed cases). */
  teaching: number;
}

/** Teaching cells become questions under ids no stored case can have (case ids are UUIDs). */
const TEACHING_PREFIX = 'teaching:';

export function isTeachingCase(c: Pick<CaseResult, 'id'>): boolean {
  return c.id.startsWith(TEACHING_PREFIX);
}

/** The PBC file name and sub-type of a teaching question, kept beside the case shape the view draws. */
export interface TeachingInfo {
  sourceFile: string;
  subtype?: string;
}
const teachingInfo = new WeakMap<CaseResult, TeachingInfo>();

export function teachingInfoOf(c: CaseResult): TeachingInfo | null {
  return teachingInfo.get(c) ?? null;
}

/**
 * A teaching cell in the shape of a reviewed case: the expert's label is the answer key, the whole image is
 * the question (PBC crops hold one centred cell), and there is no model prediction: the bundled model was
 * trained on part of the PBC dataset, so its answer on these cells would flatter it.
 */
export function teachingCase(cell: TeachingCellResult): CaseResult {
  const c: CaseResult = {
    id: `${TEACHING_PREFIX}${cell.id}`,
    file: cell.sourceFile,
    label: null,
    confidence: 0,
    probabilities: {},
    needsReview: false,
    reviewReasons: [],
    heatmapUrl: null,
    imageUrl: cell.imageUrl,
    cells: [],
    createdAt: '',
    width: cell.width,
    height: cell.height,
    review: { label: cell.label, reviewer: 'PBC dataset experts', note: '', reviewedAt: '' },
    // No model read it (see above): the case shape's model names the teaching set instead.
    model: { name: 'teaching set', version: '', sha256: null, tta: false },
  };
  teachingInfo.set(c, { sourceFile: cell.sourceFile, ...(cell.subtype ? { subtype: cell.subtype } : {}) });
  return c;
}

/**
 * The teaching set's cells as questions; none when the server has no teaching set or predates it (404), so
 * practice still works on reviewed cases alone.
 */
export async function fetchTeaching(get: () => Promise<TeachingSet>): Promise<CaseResult[]> {
  try {
    return (await get()).cells.map(teachingCase);
  } catch {
    return [];
  }
}

/** Every reviewed case, page by page (the server caps a page at 200). */
export async function fetchReviewed(
  list: (q: CaseQuery) => Promise<{ cases: CaseResult[]; total: number }>,
): Promise<CaseResult[]> {
  const all: CaseResult[] = [];
  let total = Infinity;
  while (all.length < total) {
    const page = await list({ reviewed: 'true', limit: POOL_PAGE_SIZE, offset: all.length });
    total = page.total;
    if (page.cases.length === 0) break; // cases deleted while paging: stop rather than loop
    all.push(...page.cases);
  }
  // A case reviewed while paging shifts the newest-first pages and can appear twice.
  return [...new Map(all.map((c) => [c.id, c])).values()];
}

/**
 * The question pool: the bundled teaching cells, extended by the teacher's reviewed cases. Teaching cells
 * outside the classes (a model with fewer classes) are dropped silently; only reviewed cases count as excluded.
 */
export function buildPool(
  reviewed: readonly CaseResult[],
  classes: readonly string[],
  teaching: readonly CaseResult[] = [],
): Pool {
  const own = reviewed.filter((c) => isPracticeCase(c, classes));
  const taught = teaching.filter((c) => isPracticeCase(c, classes));
  return { cases: [...taught, ...own], excluded: reviewed.length - own.length, teaching: taught.length };
}

/**
 * The answer choices: the model's classes, or (model unreachable) the class labels the reviewers used,
 * in the order they first appear.
 */
export function answerClasses(modelClasses: readonly string[], reviewed: readonly CaseResult[]): string[] {
  if (modelClasses.length) return [...modelClasses];
  const extra = new Set(['other', 'not_a_white_cell']);
  const seen = new Set<string>();
  for (const c of reviewed) if (c.review && !extra.has(c.review.label)) seen.add(c.review.label);
  return [...seen];
}

/**
 * The cell the question is about. The case's own fields repeat its most confident cell (model/types.ts),
 * and that is the label the reviewer confirmed or corrected; null when the model did not crop to cells.
 */
export function questionCell(c: CaseResult): CellResult | null {
  if (c.cells.length <= 1) return c.cells[0] ?? null;
  return (
    c.cells.find((cell) => cell.label === c.label && cell.confidence === c.confidence) ??
    c.cells.reduce((best, cell) => (cell.confidence > best.confidence ? cell : best))
  );
}

export function roundSize(poolSize: number, size = ROUND_SIZE): number {
  return Math.max(0, Math.min(size, poolSize));
}

/** Which ids this session has already asked, and the seed of the current pass through the pool. */
export interface SessionOrder {
  seed: number;
  seen: string[];
}

/**
 * The next round's ids: the pool in the session's shuffled order, skipping ids already asked. When fewer
 * unseen ids remain than the round needs, a new pass starts with `nextSeed` (only then may ids repeat, and
 * never within one round). Ids are sorted first so the order depends on the pool, not on the server's order.
 */
export function planRound(
  ids: readonly string[],
  order: SessionOrder,
  nextSeed: number,
  size = ROUND_SIZE,
): { ids: string[]; order: SessionOrder } {
  const sorted = [...new Set(ids)].sort();
  const n = roundSize(sorted.length, size);
  const seen = new Set(order.seen);
  const picked = seededShuffle(sorted, order.seed)
    .filter((id) => !seen.has(id))
    .slice(0, n);
  if (picked.length === n) return { ids: picked, order: { seed: order.seed, seen: [...seen, ...picked] } };
  const taken = new Set(picked);
  const fresh = seededShuffle(sorted, nextSeed)
    .filter((id) => !taken.has(id))
    .slice(0, n - picked.length);
  return { ids: [...picked, ...fresh], order: { seed: nextSeed, seen: fresh } };
}

export interface Answer {
  caseId: string;
  /** The reviewer's label: the answer key. */
  truth: string;
  picked: string;
  /** The model's prediction, for the "you vs the model" line (null: no cell found). */
  model: string | null;
  /** A teaching-set question: no model prediction is shown, so it is left out of the model's score. */
  teaching?: boolean;
}

export interface ClassScore {
  label: string;
  asked: number;
  correct: number;
  /** What the student answered instead, most frequent first. */
  mistakes: { picked: string; count: number }[];
}

export interface ScoreSummary {
  answered: number;
  correct: number;
  /** Answers where the model's prediction matched the reviewer. */
  modelCorrect: number;
  /** Answers the model's score is out of (teaching-set questions have no model prediction). */
  modelAnswered: number;
  /** One row per reviewer's label asked, in class order. */
  perClass: ClassScore[];
}

export function scoreSummary(answers: readonly Answer[], classes: readonly string[]): ScoreSummary {
  const byClass = new Map<string, { asked: number; correct: number; wrong: Map<string, number> }>();
  for (const a of answers) {
    const row = byClass.get(a.truth) ?? { asked: 0, correct: 0, wrong: new Map<string, number>() };
    row.asked += 1;
    if (a.picked === a.truth) row.correct += 1;
    else row.wrong.set(a.picked, (row.wrong.get(a.picked) ?? 0) + 1);
    byClass.set(a.truth, row);
  }
  const rank = (label: string) => {
    const i = classes.indexOf(label);
    return i < 0 ? classes.length : i;
  };
  const perClass = [...byClass.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([label, r]) => ({
      label,
      asked: r.asked,
      correct: r.correct,
      mistakes: [...r.wrong.entries()]
        .map(([picked, count]) => ({ picked, count }))
        .sort((x, y) => y.count - x.count || rank(x.picked) - rank(y.picked)),
    }));
  return {
    answered: answers.length,
    correct: answers.filter((a) => a.picked === a.truth).length,
    modelCorrect: answers.filter((a) => !a.teaching && a.model === a.truth).length,
    modelAnswered: answers.filter((a) => !a.teaching).length,
    perClass,
  };
}

/** "3 / 4", with no-break spaces so a score never wraps inside a sentence. */
export function scoreText(correct: number, answered: number): string {
  return `${correct}${NBSP}/${NBSP}${answered}`;
}
