/**
 * The few-shot split that eval:adapt-lab and eval:adapt-api share: n images of each class to `few`, every
 * other to `rest`, none on both sides, the same draw for the same seed and another for another seed.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FEW_SHOT_CLASSES, fewShotSplit } from './few-shot.js';

describe('fewShotSplit (PBC: each image its own group)', () => {
  const root = mkdtempSync(join(tmpdir(), 'hv-few-shot-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const src = join(root, 'lab');
  // Upper-case folders, a class the split ignores and a non-image file.
  for (const label of [...FEW_SHOT_CLASSES, 'basophil']) {
    const dir = join(src, label.toUpperCase());
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 12; i++) writeFileSync(join(dir, `${label}-${i}.jpg`), `${label} ${i}`);
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
  }
  const files = (out: string, part: string, label: string) =>
    readdirSync(join(out, part, 'TRAIN', label.toUpperCase())).sort();

  it('puts n images of each of the four classes in few and the others in rest', async () => {
    const out = join(root, 'a');
    const counts = await fewShotSplit('pbc', src, out, 3, 1);
    expect(counts).toEqual(Object.fromEntries(FEW_SHOT_CLASSES.map((c) => [c, { few: 3, rest: 9 }])));
    expect(readdirSync(join(out, 'few/TRAIN')).sort()).toEqual(FEW_SHOT_CLASSES.map((c) => c.toUpperCase()));
    for (const label of FEW_SHOT_CLASSES) {
      const few = files(out, 'few', label);
      const rest = files(out, 'rest', label);
      expect(few.filter((f) => rest.includes(f))).toEqual([]);
      expect([...few, ...rest].sort()).toEqual(
        Array.from({ length: 12 }, (_, i) => `${label}-${i}.jpg`).sort(),
      );
    }
  });

  it('draws the same images for the same seed, others for another seed', async () => {
    const draw = async (name: string, seed: number) => {
      const out = join(root, name);
      await fewShotSplit('pbc', src, out, 3, seed);
      return FEW_SHOT_CLASSES.flatMap((label) => files(out, 'few', label));
    };
    const first = await draw('b', 1);
    expect(await draw('c', 1)).toEqual(first);
    expect(await draw('d', 2)).not.toEqual(first);
  });
});
