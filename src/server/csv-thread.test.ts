import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../testing/server.js';
import { BULK_NICE, threadStats } from '../thread-priority.js';
import { casesCsvStream } from './cases-csv.js';
import { formatCsvRows, type CsvValue } from './csv-format.js';
import { CsvFormatter } from './csv-thread.js';
import type { CaseStore, StoredCase } from './store/index.js';

/** Awkward values: separators, quotes, lone CR and LF, formulas in user text and in server columns. */
const rows: CsvValue[][] = [
  ['id', 'file', 'note', 'n', 'flag', 'empty'],
  ['a', '=HYPERLINK("x")', 'line 1\rline 2\nline 3', 0.25, true, null],
  ['=SUM(1)', 'f,1 "q".jpg', '+1', -3, false, undefined],
];

/** A store of n cases, each with two cells, one of them reviewed with a note that needs quoting. */
function store(n: number): CaseStore {
  const cell = (i: number) => ({
    box: { x: i, y: 2, width: 3, height: 4 },
    label: 'neutrophil',
    confidence: 0.5,
    needsReview: true,
    reviewReasons: ['low_confidence'],
    probabilities: { neutrophil: 0.5, lymphocyte: 0.25 },
    review: i % 2 ? { label: 'lymphocyte', reviewer: '@bob', reviewedAt: 'z', note: 'a, "b"\nc' } : null,
  });
  return {
    probabilityClasses: async () => ['neutrophil', 'lymphocyte'],
    async *iterate() {
      for (let i = 0; i < n; i++)
        yield {
          id: `case-${i}`,
          file: `=f${i}.jpg`,
          createdAt: '2026-01-01T00:00:00.000Z',
          cells: [cell(0), cell(1)],
          label: 'neutrophil',
          needsReview: true,
          review: null,
          model: { name: 'm', version: '1', tta: false },
          specimenId: '-s1',
        } as unknown as StoredCase;
    },
  } as unknown as CaseStore;
}

async function text(stream: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('CsvFormatter', () => {
  it('gives exactly the text formatted on this thread, for rows and for a whole export', async () => {
    const f = new CsvFormatter();
    try {
      expect(await f.format(rows, [1, 2])).toBe(formatCsvRows(rows, [1, 2]));
      const here = await text(await casesCsvStream(store(101), ['neutrophil'], {}));
      const there = await text(await casesCsvStream(store(101), ['neutrophil'], {}, { formatter: f }));
      expect(there).toBe(here);
      const parsed = parseCsv(there);
      // A header, two rows per case; user text made inert, server columns left alone.
      expect(parsed).toHaveLength(1 + 2 * 101);
      expect(parsed[2][1]).toBe(`'=f0.jpg`);
      expect(parsed[2][parsed[0].indexOf('note')]).toBe('a, "b"\nc');
    } finally {
      await f.close();
    }
  });

  it.runIf(process.platform === 'linux')('formats on a thread of its own at low priority', async () => {
    const ours = getPriority(0);
    expect(ours).toBeLessThan(BULK_NICE);
    const before = await threadStats();
    const f = new CsvFormatter();
    try {
      await f.format(rows, [1]);
      const added = [...(await threadStats())].filter(([tid]) => !before.has(tid));
      expect(added.filter(([, t]) => t.nice !== ours).map(([, t]) => t.nice)).toEqual([BULK_NICE]);
      expect(getPriority(0)).toBe(ours);
    } finally {
      await f.close();
    }
    await expect(f.format(rows, [1])).rejects.toMatchObject({ code: 'closed' });
  });
});
