import { describe, expect, it } from 'vitest';
import { casesCsvStream } from './cases-csv.js';
import type { CaseStore, StoredCase } from './store/index.js';
import { parseCsv } from '../testing/server.js';

/** A store of n whole-image cases that counts how many it has handed out, a page of 200 per turn. */
function countingStore(n: number) {
  const state = { yielded: 0 };
  const store = {
    probabilityClasses: async () => ['neutrophil'],
    async *iterate() {
      for (let i = 0; i < n; i++) {
        state.yielded++;
        yield {
          id: `case-${i}`,
          file: i === 0 ? '=HYPERLINK("x")' : `f${i}.jpg`,
          createdAt: '2026-01-01T00:00:00.000Z',
          cells: [],
          label: 'neutrophil',
          confidence: 0.9,
          needsReview: false,
          reviewReasons: [],
          probabilities: { neutrophil: 0.9 },
          review: null,
          model: { name: 'm', version: '1', tta: false },
        } as unknown as StoredCase;
        if (i % 200 === 199) await new Promise((r) => setImmediate(r));
      }
    },
  } as unknown as CaseStore;
  return { store, state };
}

describe('casesCsvStream', () => {
  it('sends its first rows before the store has handed out every case, and all of them in the end', async () => {
    const { store, state } = countingStore(5000);
    const stream = await casesCsvStream(store, ['neutrophil'], {});
    let yieldedAtFirstChunk = -1;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) {
      if (yieldedAtFirstChunk < 0) yieldedAtFirstChunk = state.yielded;
      chunks.push(Buffer.from(chunk as Buffer));
    }
    expect(yieldedAtFirstChunk).toBeLessThan(5000);
    const rows = parseCsv(Buffer.concat(chunks).toString('utf8'));
    expect(rows).toHaveLength(5001);
    expect(rows[0][0]).toBe('id');
    // Formula guard as before: user text starting with = is made inert.
    expect(rows[1][1]).toBe(`'=HYPERLINK("x")`);
  });
});
