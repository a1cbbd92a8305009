import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanDatasets } from './dataset.js';
import { loadKaggleTable, photoGroupFor } from './photo-groups.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hv-photo-groups-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('Kaggle photo-group table', () => {
  it('maps every Kaggle TRAIN and TEST file to a BCCD photo group', async () => {
    const table = (await loadKaggleTable())!;
    expect(table.size).toBe(9957 + 2487);
    const groups = new Set(table.values());
    for (const g of groups) expect(g).toMatch(/^bccd\/\d{5}(\+\d{5})*$/);
    // 348 matchable photos, minus same-field pairs and look-alikes merged : 249 in TRAIN, 63 in TEST, 3 in both.
    expect(groups.size).toBe(309);
  });

  it('applies only to a folder that is (nearly all) the Kaggle set', async () => {
    const table = (await loadKaggleTable())!;
    const keys = [...table.keys()].filter((k) => k.startsWith('TRAIN/MONOCYTE/')).slice(0, 3);
    const lookup = await photoGroupFor(keys);
    expect(keys.map(lookup)).toEqual(keys.map((k) => table.get(k)));
    const mixed = await photoGroupFor([
      ...keys,
      ...Array.from({ length: 10 }, (_, i) => `TRAIN/MONOCYTE/own${i}.jpeg`),
    ]);
    expect(mixed(keys[0])).toBeUndefined();
  });

  it('groups a copy of the Kaggle layout by photo when scanned', async () => {
    const table = (await loadKaggleTable())!;
    const keys = [...table.keys()].filter((k) => k.startsWith('TEST/MONOCYTE/')).slice(0, 40);
    for (const k of keys) {
      await mkdir(join(root, 'kaggle', 'TEST', 'MONOCYTE'), { recursive: true });
      await writeFile(join(root, 'kaggle', k), 'not decoded by the scanner');
    }
    const ds = await scanDatasets([join(root, 'kaggle', 'TEST')]);
    expect(ds.items.map((i) => i.group)).toEqual(
      keys.sort((a, b) => (a < b ? -1 : 1)).map((k) => table.get(k)),
    );
    // Copies share groups: 40 files, at most the 4 test monocyte photos.
    expect(new Set(ds.items.map((i) => i.group)).size).toBeLessThanOrEqual(4);
  });
});
