import { describe, expect, it } from 'vitest';
import type { CaseQuery, CaseResult, CellResult } from './api.js';
import {
  answerClasses,
  buildPool,
  fetchReviewed,
  isPracticeCase,
  planRound,
  POOL_PAGE_SIZE,
  questionCell,
  roundSize,
  scoreSummary,
  seededRandom,
  seededShuffle,
  fetchTeaching,
  isTeachingCase,
  teachingCase,
  teachingInfoOf,
  type Answer,
} from './practice.js';
import { ApiError, type TeachingCellResult } from './api.js';
import { parseHash } from './router.js';

const CLASSES = ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'];

function cell(label: string, confidence: number, x = 0): CellResult {
  return {
    box: { x, y: 0, width: 10, height: 10, score: 1 },
    label,
    confidence,
    probabilities: { [label]: confidence },
    needsReview: false,
    reviewReasons: [],
  };
}

function kase(id: string, reviewLabel: string | null, label: string | null = 'neutrophil'): CaseResult {
  return {
    id,
    file: `${id}.jpg`,
    label,
    confidence: 0.9,
    probabilities: label ? { [label]: 0.9 } : {},
    needsReview: false,
    reviewReasons: [],
    heatmapUrl: null,
    imageUrl: `/api/v1/cases/${id}/image`,
    cells: label ? [cell(label, 0.9)] : [],
    createdAt: '2024-01-01T00:00:00Z',
    width: 64,
    height: 64,
    model: { name: 'fake', version: '1', sha256: null, tta: false },
    review: reviewLabel
      ? { label: reviewLabel, reviewer: 'Dr A', note: '', reviewedAt: '2024-01-02T00:00:00Z' }
      : null,
  };
}

describe('seeded shuffle', () => {
  const ids = Array.from({ length: 30 }, (_, i) => `case-${i}`);

  it('is a permutation that depends only on the seed', () => {
    const a = seededShuffle(ids, 42);
    expect([...a].sort()).toEqual([...ids].sort());
    expect(seededShuffle(ids, 42)).toEqual(a);
    expect(seededShuffle(ids, 43)).not.toEqual(a);
    expect(a).not.toEqual(ids);
    expect(ids[0]).toBe('case-0'); // input untouched
  });

  it('draws uniform-looking numbers in [0, 1)', () => {
    const random = seededRandom(7);
    const xs = Array.from({ length: 10_000 }, random);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
  });

  it('puts each item first about equally often over many seeds', () => {
    const firsts = new Map<string, number>();
    for (let seed = 0; seed < 4000; seed++) {
      const first = seededShuffle(['a', 'b', 'c', 'd'], seed)[0];
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    for (const k of ['a', 'b', 'c', 'd']) {
      expect(firsts.get(k)).toBeGreaterThan(850);
      expect(firsts.get(k)).toBeLessThan(1150);
    }
  });
});

describe('rounds', () => {
  const ids = Array.from({ length: 23 }, (_, i) => `id-${String(i).padStart(2, '0')}`);

  it('is 10 questions, or the whole pool when smaller', () => {
    expect(roundSize(23)).toBe(10);
    expect(roundSize(3)).toBe(3);
    expect(roundSize(0)).toBe(0);
  });

  it('asks every id once before any repeats, and never repeats within a round', () => {
    let order = { seed: 1, seen: [] as string[] };
    const asked: string[] = [];
    for (let r = 0; r < 3; r++) {
      const planned = planRound(ids, order, 100 + r);
      order = planned.order;
      expect(planned.ids).toHaveLength(10);
      expect(new Set(planned.ids).size).toBe(10);
      asked.push(...planned.ids);
    }
    // 30 questions from 23 ids: the first 23 cover the pool exactly once.
    expect([...asked.slice(0, 23)].sort()).toEqual(ids);
    // Round 3 crossed into a second pass seeded with the next seed.
    expect(order.seed).toBe(102);
    expect(order.seen).toEqual(asked.slice(23));
  });

  it('follows the seed, not the order the server listed the cases in', () => {
    const order = { seed: 9, seen: [] };
    expect(planRound([...ids].reverse(), order, 1).ids).toEqual(planRound(ids, order, 1).ids);
  });

  it('lets new cases join, skips deleted ones, and handles an empty pool', () => {
    const first = planRound(ids.slice(0, 12), { seed: 5, seen: [] }, 6);
    const withNew = planRound([...ids.slice(0, 12), 'new-case'], first.order, 6);
    const unseen = [...ids.slice(0, 12).filter((id) => !first.ids.includes(id)), 'new-case'];
    // The 2 unseen cases and the new one come first; a new pass fills the round without repeating them.
    expect([...withNew.ids.slice(0, 3)].sort()).toEqual(unseen.sort());
    expect(new Set(withNew.ids).size).toBe(10);
    expect(withNew.order.seed).toBe(6);
    const gone = planRound(ids.slice(2, 12), first.order, 7);
    expect(gone.ids.slice(0, 2).every((id) => !first.ids.includes(id))).toBe(true);
    expect(planRound([], { seed: 5, seen: ['x'] }, 6)).toEqual({ ids: [], order: { seed: 5, seen: ['x'] } });
  });
});

describe('question pool', () => {
  it('keeps reviewed cases whose reviewer label is a class, not other / not a white cell', () => {
    const cases = [
      kase('a', 'lymphocyte'),
      kase('b', 'other'),
      kase('c', 'not_a_white_cell'),
      kase('d', null),
      kase('e', 'basophil'), // a class of another model
      kase('f', 'monocyte', null), // no cell located, but a reviewer named it
    ];
    expect(cases.map((c) => isPracticeCase(c, CLASSES))).toEqual([true, false, false, false, false, true]);
    const pool = buildPool(cases, CLASSES);
    expect(pool.cases.map((c) => c.id)).toEqual(['a', 'f']);
    expect(pool.excluded).toBe(4);
  });

  it('pages through every reviewed case and drops duplicates from shifting pages', async () => {
    let all = Array.from({ length: 450 }, (_, i) => kase(`c${i}`, 'neutrophil'));
    const queries: CaseQuery[] = [];
    const list = async (q: CaseQuery) => {
      queries.push(q);
      const page = all.slice(q.offset, (q.offset ?? 0) + (q.limit ?? 50));
      // Someone reviews a case while the first page is read: later pages shift by one.
      if (queries.length === 1) all = [kase('late', 'monocyte'), ...all];
      return { cases: page, total: all.length };
    };
    const reviewed = await fetchReviewed(list);
    // Every case of the first snapshot once (c199 came twice); the late one is for the next round.
    expect(reviewed.map((c) => c.id)).toEqual(Array.from({ length: 450 }, (_, i) => `c${i}`));
    expect(queries.every((q) => q.reviewed === 'true' && q.limit === POOL_PAGE_SIZE)).toBe(true);
    expect(queries.map((q) => q.offset)).toEqual([0, 200, 400]);
  });

  it('stops when the server runs out of cases before its total', async () => {
    let calls = 0;
    const list = async () => {
      calls++;
      return { cases: calls === 1 ? [kase('a', 'monocyte')] : [], total: 5 };
    };
    expect((await fetchReviewed(list)).map((c) => c.id)).toEqual(['a']);
    expect(calls).toBe(2);
  });

  it('offers the model classes, or the reviewers’ classes when the model is unreachable', () => {
    const cases = [kase('a', 'monocyte'), kase('b', 'other'), kase('c', 'lymphocyte'), kase('d', 'monocyte')];
    expect(answerClasses(CLASSES, cases)).toEqual(CLASSES);
    expect(answerClasses([], cases)).toEqual(['monocyte', 'lymphocyte']);
  });

  it('asks about the cell the case label repeats', () => {
    const c = kase('a', 'lymphocyte', 'monocyte');
    c.cells = [cell('neutrophil', 0.7, 1), cell('monocyte', 0.9, 2), cell('monocyte', 0.6, 3)];
    expect(questionCell(c)?.box.x).toBe(2);
    c.confidence = 0.95; // no exact match: the most confident cell
    expect(questionCell(c)?.box.x).toBe(2);
    expect(questionCell(kase('b', 'monocyte', null))).toBeNull();
  });
});

describe('score summary', () => {
  const answers: Answer[] = [
    { caseId: '1', truth: 'neutrophil', picked: 'neutrophil', model: 'neutrophil' },
    { caseId: '2', truth: 'neutrophil', picked: 'monocyte', model: 'neutrophil' },
    { caseId: '3', truth: 'lymphocyte', picked: 'monocyte', model: 'monocyte' },
    { caseId: '4', truth: 'lymphocyte', picked: 'eosinophil', model: 'lymphocyte' },
    { caseId: '5', truth: 'lymphocyte', picked: 'monocyte', model: null },
    { caseId: '6', truth: 'eosinophil', picked: 'eosinophil', model: 'neutrophil' },
  ];

  it('counts correct answers overall, per reviewer label in class order, and for the model', () => {
    const s = scoreSummary(answers, CLASSES);
    expect(s).toMatchObject({ answered: 6, correct: 2, modelCorrect: 3 });
    expect(s.perClass.map((c) => [c.label, c.correct, c.asked])).toEqual([
      ['eosinophil', 1, 1],
      ['lymphocyte', 0, 3],
      ['neutrophil', 1, 2],
    ]);
  });

  it('lists what a class was taken for, most frequent first', () => {
    const lymph = scoreSummary(answers, CLASSES).perClass.find((c) => c.label === 'lymphocyte')!;
    expect(lymph.mistakes).toEqual([
      { picked: 'monocyte', count: 2 },
      { picked: 'eosinophil', count: 1 },
    ]);
    expect(scoreSummary([], CLASSES)).toEqual({
      answered: 0,
      correct: 0,
      modelCorrect: 0,
      modelAnswered: 0,
      perClass: [],
    });
  });
});

describe('route', () => {
  it('has a practice page', () => {
    expect(parseHash('#/practice')).toEqual({ name: 'practice' });
  });
});

describe('teaching cells as questions', () => {
  const cellOf = (id: string, label: string): TeachingCellResult => ({
    id,
    label,
    sourceFile: `${id}.jpg`,
    imageUrl: `/api/v1/teaching/${id}/image`,
    width: 300,
    height: 300,
    ...(label === 'neutrophil' ? { subtype: 'band neutrophil' } : {}),
  });

  it('become reviewed-case questions with the expert label as key and no model prediction', () => {
    const c = teachingCase(cellOf('neutrophil-01', 'neutrophil'));
    expect(isTeachingCase(c)).toBe(true);
    expect(isTeachingCase(kase('a', 'neutrophil'))).toBe(false);
    expect(c.review?.label).toBe('neutrophil');
    expect(c.label).toBeNull();
    expect(c.cells).toEqual([]);
    expect(c.imageUrl).toBe('/api/v1/teaching/neutrophil-01/image');
    expect(teachingInfoOf(c)).toEqual({ sourceFile: 'neutrophil-01.jpg', subtype: 'band neutrophil' });
    expect(teachingInfoOf(kase('a', 'neutrophil'))).toBeNull();
  });

  it('fill the pool on their own and are extended by reviewed cases; only reviewed ones count as excluded', () => {
    const teaching = [
      teachingCase(cellOf('basophil-01', 'basophil')),
      teachingCase(cellOf('monocyte-01', 'monocyte')),
    ];
    expect(buildPool([], CLASSES, teaching)).toEqual({ cases: [teaching[1]], excluded: 0, teaching: 1 });
    const own = [kase('a', 'eosinophil'), kase('b', 'other')];
    const pool = buildPool(own, [...CLASSES, 'basophil'], teaching);
    expect(pool.cases.map((c) => c.id)).toEqual(['teaching:basophil-01', 'teaching:monocyte-01', 'a']);
    expect(pool).toMatchObject({ excluded: 1, teaching: 2 });
    // No model: the answer buttons come from the labels in the pool, teaching labels included.
    expect(answerClasses([], [...teaching, ...own])).toEqual(['basophil', 'monocyte', 'eosinophil']);
  });

  it('are simply absent when the server has no teaching set', async () => {
    expect(await fetchTeaching(() => Promise.reject(new ApiError('Nothing here', 404, 'not_found')))).toEqual(
      [],
    );
    const got = await fetchTeaching(() =>
      Promise.resolve({ source: '', license: '', modified: '', cells: [cellOf('platelet-01', 'platelet')] }),
    );
    expect(got.map((c) => c.id)).toEqual(['teaching:platelet-01']);
  });

  it('leave the model out of the model’s score', () => {
    const answers: Answer[] = [
      { caseId: 'teaching:basophil-01', truth: 'basophil', picked: 'basophil', model: null, teaching: true },
      { caseId: 'a', truth: 'eosinophil', picked: 'neutrophil', model: 'eosinophil' },
    ];
    expect(scoreSummary(answers, CLASSES)).toMatchObject({
      answered: 2,
      correct: 1,
      modelCorrect: 1,
      modelAnswered: 1,
    });
  });
});
