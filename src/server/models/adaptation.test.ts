/**
 * The held-back split of an adaptation depends on the reviewed images only: two stores holding the same
 * reviewed images under other case ids, added in another order, give the same training rows and the same
 * held-back images.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CellPrediction, ModelCard } from '../../model/types.js';
import { splitReviewed } from '../../training/reviewed.js';
import { newCase, prediction } from '../store/contract.js';
import { SqliteCaseStore } from '../store/index.js';
import { reviewedCells } from './adaptation.js';

const CLASSES = ['eosinophil', 'lymphocyte', 'neutrophil'];
const card = { classes: CLASSES, preprocessing: { crop: 'cell' } } as unknown as ModelCard;

/** Ten one-cell images of each class, each cell reviewed with its class. */
const images = CLASSES.flatMap((label) =>
  Array.from({ length: 10 }, (_, i) => ({ label, bytes: Buffer.from(`${label} image ${i}`) })),
);

function cell(label: string): CellPrediction {
  return {
    box: { x: 1, y: 2, width: 30, height: 30, score: 0.9 },
    label,
    confidence: 0.9,
    probabilities: { [label]: 0.9 },
    needsReview: false,
    reviewReasons: [],
  };
}

describe('the held-back split of an adaptation', () => {
  const dirs: string[] = [];
  const stores: SqliteCaseStore[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function storeWith(order: typeof images): Promise<SqliteCaseStore> {
    const dir = mkdtempSync(join(tmpdir(), 'hv-split-'));
    dirs.push(dir);
    const store = SqliteCaseStore.open(dir);
    stores.push(store);
    for (const im of order) {
      const c = await store.add(newCase(im.bytes, { prediction: { ...prediction, cells: [cell(im.label)] } }));
      await store.addReview(c.id, { label: im.label, reviewer: 'Dr Test', cell: 0 });
    }
    return store;
  }

  it('is the same for the same images under other case ids, in another order', async () => {
    const a = await storeWith(images);
    const b = await storeWith([...images].reverse());
    const ids = async (s: SqliteCaseStore) => (await s.list({ limit: 100, offset: 0 })).cases.map((c) => c.id);
    expect(new Set([...(await ids(a)), ...(await ids(b))]).size).toBe(2 * images.length); // no id shared

    const split = async (s: SqliteCaseStore) => {
      const cells = await reviewedCells(s, card);
      const r = splitReviewed(CLASSES, cells, { minCellsPerClass: 5, holdOutFraction: 0.3, seed: 1 });
      const bytesOf = (i: number) => cells[r.usable[i]].image.toString();
      return { rows: r.usable.map((_, i) => bytesOf(i)), heldBack: r.split.val.map(bytesOf) };
    };
    const [sa, sb] = [await split(a), await split(b)];
    expect(sa.heldBack).toHaveLength(9); // 3 of each class's 10 images
    expect(sb.rows).toEqual(sa.rows);
    expect(sb.heldBack).toEqual(sa.heldBack);
  });
});
