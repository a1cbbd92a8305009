/**
 * Familiarity end to end on real cells: a small PBC-only model → familiarizeModel → the model file computes
 * the distances, the card holds the thresholds, and predictions carry review reasons: another lab's image,
 * a cat photo, a blank and a transparent image are flagged. Needs ../shared.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeImage } from '../model/analyzer.js';
import { Classifier, DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { withoutFamiliarity } from '../model/familiarity-graph.js';
import { resolveBackbonePath } from '../model/feature-extractor.js';
import { OnnxSession } from '../model/onnx/runtime.js';
import type { ModelCard } from '../model/types.js';
import { FOUR_CLASSES, hasPbc, PBC, pbcFiles, writeLabelledFolder } from '../testing/cells.js';
import { SHARED } from '../testing/shared.js';
import { familiarizeModel } from './familiarize.js';
import { trainModel } from './train.js';

const PER_CLASS = 30;
const SKIP = !hasPbc ? `needs ${PBC} (the PBC cells in ../shared)` : '';
if (SKIP) console.warn(`[skipped] familiarity round trip: ${SKIP}`);

describe.skipIf(!!SKIP)(`familiarity round trip${SKIP ? ` — skipped: ${SKIP}` : ''}`, () => {
  let tmp: string;
  let out: string;
  let classifier: Classifier;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hv-familiar-'));
    const data = join(tmp, 'data');
    out = join(tmp, 'model');
    await writeLabelledFolder(data, FOUR_CLASSES, PER_CLASS);
    const common = { valFraction: 0.25, cacheDir: join(tmp, 'cache') };
    await trainModel({
      ...common,
      data: [data],
      out,
      backbone: resolveBackbonePath(DEFAULT_MODEL_PATH),
      crop: 'cell',
      cropPadding: 0,
      views: 1,
      seed: 3,
      reviewTargetAccuracy: 0.95,
      name: 'hv-familiar-test',
      refit: false,
      testTimeViews: false,
    });
    await familiarizeModel({ ...common, model: out, data: [data] });
    classifier = await Classifier.load(out);
  }, 300_000);

  afterAll(async () => {
    await classifier?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('binds the new model file to its card and records thresholds chosen on validation', () => {
    const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as ModelCard;
    const bytes = readFileSync(join(out, 'model.onnx'));
    expect(card.modelSha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    const f = card.familiarity!;
    expect(f.cell.components).toEqual(FOUR_CLASSES);
    expect(f.image.components).toEqual(['data']);
    expect(f.cell.columns).toEqual([0, 2192]);
    expect(f.image.columns).toEqual([0, 336]);
    expect(f.cell.threshold).toBeGreaterThan(0);
    // The block heads' disagreement, thresholded for the one training lab.
    expect(f.disagreement!.blocks).toEqual([
      [0, 336],
      [336, 912],
      [912, 2192],
    ]);
    expect(f.disagreement!.thresholds.data).toBeGreaterThan(0);
    expect(f.validation!.byReason.disagreement).toBeLessThanOrEqual(0.1);
    // Each check alone flags about 1 − its quantile of validation images: a handful at most here.
    expect(f.validation!.reviewRate).toBeLessThanOrEqual(0.15);
    // The review budget: the confidence threshold only ever goes down, and the lab stays within 10 %.
    const b = f.reviewBudget!;
    expect(b.budget).toBe(0.1);
    expect(card.reviewThreshold).toBeLessThanOrEqual(b.before);
    expect(b.reviewRate.data).toBeLessThanOrEqual(0.1);
    expect(classifier.familiar).toBe(true);
  });

  it('can be stripped again, leaving the classifier outputs untouched', async () => {
    const bytes = readFileSync(join(out, 'model.onnx'));
    const names = async (b: Uint8Array) => {
      const s = await OnnxSession.create(b);
      const n = [...s.outputNames].sort();
      await s.close();
      return n;
    };
    const stripped = withoutFamiliarity(bytes);
    expect(await names(bytes)).toContain('cell_distance');
    expect(await names(stripped)).toEqual(
      (await names(bytes)).filter((n) => n !== 'cell_distance' && n !== 'image_distance'),
    );
    expect(stripped.length).toBeLessThan(bytes.length);
  });

  it('scores unseen cells of the trained lab and classes as familiar, mostly', async () => {
    const held = FOUR_CLASSES.flatMap((c) => pbcFiles(c, 3, PER_CLASS));
    const results = await Promise.all(held.map((f) => analyzeImage(classifier, f)));
    for (const r of results) {
      expect(r.distance).toBeDefined();
      expect(r.needsReview).toBe(r.reviewReasons.length > 0);
    }
    const unfamiliar = results.filter((r) => r.reviewReasons.some((x) => x.startsWith('unfamiliar'))).length;
    expect(unfamiliar).toBeLessThanOrEqual(3);
  });

  it('flags another lab, a cat, a blank and a transparent image', async () => {
    const kaggleDir = join(SHARED, 'data/kaggle-blood-cells/TRAIN/NEUTROPHIL');
    const kaggle = readdirSync(kaggleDir)
      .sort()
      .slice(0, 6)
      .map((f) => join(kaggleDir, f));
    const other = await Promise.all(kaggle.map((f) => analyzeImage(classifier, f)));
    const unfamiliarImages = other.filter((r) => r.reviewReasons.includes('unfamiliar_image')).length;
    expect(unfamiliarImages).toBeGreaterThanOrEqual(5);

    const cat = await analyzeImage(classifier, join(SHARED, 'weights/cat_720p.jpg'));
    expect(cat.needsReview).toBe(true);
    expect(cat.reviewReasons.length).toBeGreaterThan(0);

    const blank = await sharp({ create: { width: 360, height: 360, channels: 3, background: '#f0d0d8' } })
      .png()
      .toBuffer();
    const b = await analyzeImage(classifier, blank);
    expect(b.needsReview).toBe(true);
    expect(b.reviewReasons).toContain('damaged_image');

    const clear = await sharp({
      create: { width: 360, height: 360, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const t = await analyzeImage(classifier, clear);
    expect(t.needsReview).toBe(true);
    expect(t.reviewReasons).toContain('damaged_image');
    expect(t.message).toMatch(/transparent/);
    console.info(
      `[familiarity] kaggle image distances ${other.map((r) => r.distance?.image).join(', ')}; ` +
        `cat ${JSON.stringify(cat.distance)} ${cat.reviewReasons.join(',')}`,
    );
  });
});
