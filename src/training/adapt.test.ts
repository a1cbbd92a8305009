/**
 * `adapt` end to end on real cells: a copy of the bundled model given training statistics from a few PBC
 * cells is aligned to Kaggle images (another lab) without their labels; the result is a model folder that
 * loads and predicts, whose card says what it was adapted on. Needs ../shared.
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeImage } from '../model/analyzer.js';
import { Classifier, DEFAULT_MODEL_PATH } from '../model/classifier.js';
import type { ModelCard } from '../model/types.js';
import { FOUR_CLASSES, hasPbc, PBC, pbcFiles, truncatedJpeg } from '../testing/cells.js';
import { SHARED } from '../testing/shared.js';
import { readStats } from './activation-stats.js';
import { adaptModel, type AdaptResult } from './adapt.js';
import { addTrainingStats } from './familiarize.js';

const KAGGLE = join(SHARED, 'data/kaggle-blood-cells/TRAIN');
const SKIP = !hasPbc || !existsSync(KAGGLE) ? `needs ${PBC} and ${KAGGLE} (../shared)` : '';
if (SKIP) console.warn(`[skipped] adapt end to end: ${SKIP}`);
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe.skipIf(!!SKIP)(`adapt end to end${SKIP ? ` — skipped: ${SKIP}` : ''}`, () => {
  let tmp: string;
  let parent: string;
  let lab: string;
  let out: string;
  let r: AdaptResult;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hv-adapt-'));
    parent = join(tmp, 'parent');
    mkdirSync(parent);
    copyFileSync(DEFAULT_MODEL_PATH, join(parent, 'model.onnx'));
    copyFileSync(DEFAULT_MODEL_PATH.replace(/\.onnx$/, '.json'), join(parent, 'model.json'));
    // Training statistics from a few of its training lab's cells (PBC), as familiarize would add them.
    const train = join(tmp, 'train');
    for (const c of FOUR_CLASSES) {
      mkdirSync(join(train, c), { recursive: true });
      for (const f of pbcFiles(c, 8)) copyFileSync(f, join(train, c, f.slice(f.lastIndexOf('/') + 1)));
    }
    await addTrainingStats({ model: parent, data: [train] });
    // The lab: 60 Kaggle images in one folder, no class folders.
    lab = join(tmp, 'kaggle-lab');
    mkdirSync(lab);
    for (const c of ['EOSINOPHIL', 'LYMPHOCYTE', 'MONOCYTE', 'NEUTROPHIL'])
      for (const f of readdirSync(join(KAGGLE, c)).sort().slice(0, 15))
        copyFileSync(join(KAGGLE, c, f), join(lab, f));
    out = join(tmp, 'adapted');
    r = await adaptModel({ model: parent, data: [lab], out });
  }, 600_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('writes a model folder whose card says what it was adapted on', () => {
    const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as ModelCard;
    const parentCard = JSON.parse(readFileSync(join(parent, 'model.json'), 'utf8')) as ModelCard;
    expect(card.modelSha256).toBe(sha(join(out, 'model.onnx')));
    const a = card.adaptation!;
    expect(a.folders).toEqual(['kaggle-lab']);
    expect(a.found).toBe(60);
    expect(a.images + a.skipped).toBe(60);
    expect(a.images).toBeGreaterThanOrEqual(50);
    expect(a.parent.modelSha256).toBe(parentCard.modelSha256);
    expect(Date.now() - Date.parse(a.date)).toBeLessThan(600_000);
    expect(a.keptFromParent).toMatch(/temperature/);
    expect(card.familiarity!.image.components).toEqual(['kaggle-lab']);
    expect(card.familiarity!.cell).toEqual(parentCard.familiarity!.cell);
    expect(card.name).toBe(`${parentCard.name}-kaggle-lab`);
    // The training statistics travel on with it (a second adapt needs them), and the parent is untouched.
    expect(readStats(join(out, 'model.onnx'), card).size).toBeGreaterThan(50);
    expect(sha(join(parent, 'model.onnx'))).toBe(parentCard.modelSha256);
  });

  it("brings the lab's channel statistics to the training ones", () => {
    const [first, last] = [r.mismatch[0], r.mismatch[r.mismatch.length - 1]];
    expect(last.medianMean).toBeLessThan(first.medianMean / 2);
    expect(last.medianStd).toBeLessThan(first.medianStd / 2);
  });

  it('loads like any model and predicts; its image check is fitted on the lab', async () => {
    const classifier = await Classifier.load(out);
    try {
      const img = join(lab, readdirSync(lab).sort()[0]);
      const p = await analyzeImage(classifier, img);
      expect(FOUR_CLASSES.concat(classifier.card.classes)).toContain(p.label);
      expect(p.distance).toBeDefined();
    } finally {
      await classifier.close();
    }
    // The image check was refitted on the lab (the parent's was fitted on its training labs).
    expect(r.flagged.after!.unfamiliarImage).toBeLessThanOrEqual(0.2);
    const parentCard = JSON.parse(readFileSync(join(parent, 'model.json'), 'utf8')) as ModelCard;
    expect(r.card.familiarity!.image.threshold).not.toBe(parentCard.familiarity!.image.threshold);
  });

  it('refuses a folder where too few images can be read', async () => {
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    const good = readdirSync(lab).sort().slice(0, 10);
    for (const f of good) copyFileSync(join(lab, f), join(bad, f));
    for (let i = 0; i < 45; i++)
      writeFileSync(join(bad, `broken-${i}.jpg`), truncatedJpeg(join(lab, good[0])));
    await expect(adaptModel({ model: parent, data: [bad], out: join(tmp, 'bad-out') })).rejects.toThrow(
      /at least 50 usable images of the lab; only \d+ of 55 could be read/,
    );
  });
});
