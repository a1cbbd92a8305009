/**
 * The tiny round trip: a few real PBC cells → trainModel → model.onnx + model.json → Classifier.load →
 * evaluateModel; then a rerun from the feature cache must give the same model. Needs ../shared.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier, DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { FeatureExtractor, resolveBackbonePath } from '../model/feature-extractor.js';
import type { ModelCard } from '../model/types.js';
import { FOUR_CLASSES, hasPbc, PBC, truncatedJpeg, writeLabelledFolder } from '../testing/cells.js';
import { scanDatasets } from './dataset.js';
import { evaluateModel } from './evaluate.js';
import { computeFeatures } from './feature-cache.js';
import { chooseReviewThreshold } from './held-out.js';
import { trainModel, type TrainOptions, type TrainResult } from './train.js';

const PER_CLASS = 8;
const SKIP = !hasPbc ? `needs ${PBC} (the PBC cells in ../shared)` : '';
if (SKIP) console.warn(`[skipped] train → evaluate round trip: ${SKIP}`);

describe('chooseReviewThreshold', () => {
  // Two classes; row i is [p, 1 − p] or [1 − p, p]. Confidences 0.95 ok, 0.9 ok, 0.8 wrong, 0.7 ok, 0.6 wrong.
  const rows: [number, number][] = [
    [0.95, 0.05],
    [0.1, 0.9],
    [0.8, 0.2],
    [0.3, 0.7],
    [0.6, 0.4],
  ];
  const probs = new Float32Array(rows.flat());
  const y = new Int32Array([0, 1, 1, 1, 1]);

  it('is the lowest confidence at which the results kept reach the target accuracy', () => {
    // Kept at ≥ 0.7: 4 results, 3 right (75%); at ≥ 0.6: 3 of 5 (60%); at ≥ 0.9: 2 of 2.
    expect(chooseReviewThreshold(probs, y, 2, 0.75)).toBeCloseTo(0.7, 6);
    expect(chooseReviewThreshold(probs, y, 2, 0.6)).toBeCloseTo(0.6, 6);
    expect(chooseReviewThreshold(probs, y, 2, 0.76)).toBeCloseTo(0.9, 6);
  });

  it('stays within [0.5, 0.99]', () => {
    // Everything right: the lowest confidence (0.55)...
    const allRight = new Float32Array([0.55, 0.45, 0.4, 0.6]);
    expect(chooseReviewThreshold(allRight, new Int32Array([0, 1]), 2, 0.95)).toBe(Math.fround(0.55));
    // ...but never below 0.5 (three classes: a right answer at 0.4 confidence).
    const three = new Float32Array([0.4, 0.3, 0.3, 0.1, 0.9, 0]);
    expect(chooseReviewThreshold(three, new Int32Array([0, 1]), 3, 0.95)).toBe(0.5);
    // Nothing reaches the target: flag (nearly) everything.
    expect(chooseReviewThreshold(new Float32Array([0.9, 0.1]), new Int32Array([1]), 2, 0.9)).toBe(0.99);
  });

  it('treats tied confidences together (a threshold keeps every result at that confidence)', () => {
    // 0.9 right, then two at 0.8 (one right, one wrong): at ≥ 0.8 three are kept, two right (67%).
    const tied = new Float32Array([0.9, 0.1, 0.8, 0.2, 0.8, 0.2]);
    const t = chooseReviewThreshold(tied, new Int32Array([0, 0, 1]), 2, 0.9);
    expect(t).toBeCloseTo(0.9, 6);
  });
});

describe.skipIf(!!SKIP)(`train → evaluate round trip${SKIP ? ` — skipped: ${SKIP}` : ''}`, () => {
  let tmp: string;
  let data: string;
  let options: TrainOptions;
  let first: TrainResult;
  const goodImages: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hv-train-'));
    data = join(tmp, 'data');
    goodImages.push(...(await writeLabelledFolder(data, FOUR_CLASSES, PER_CLASS)));
    writeFileSync(join(data, 'monocyte', 'zz-corrupt.jpg'), truncatedJpeg(goodImages[0]));
    writeFileSync(join(data, 'lymphocyte', 'readme.txt'), 'not an image\n');
    options = {
      data: [data],
      out: join(tmp, 'model-1'),
      backbone: resolveBackbonePath(DEFAULT_MODEL_PATH),
      crop: 'cell',
      cropPadding: 0.1,
      views: 2,
      seed: 7,
      valFraction: 0.25,
      reviewTargetAccuracy: 0.95,
      cacheDir: join(tmp, 'cache'),
      name: 'hv-test',
      refit: true,
    };
    first = await trainModel(options);
    console.info(
      `[round trip] seconds ${JSON.stringify(first.seconds)} val n ${first.card.validation.n} l2 ${first.card.head.l2}`,
    );
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('writes model.onnx and a model card that describes it', () => {
    const card = JSON.parse(readFileSync(join(options.out, 'model.json'), 'utf8')) as ModelCard;
    expect(first.modelPath).toBe(join(options.out, 'model.onnx'));
    expect(card.name).toBe('hv-test');
    expect(card.classes).toEqual(FOUR_CLASSES);
    expect(card.modelSha256).toBe(createHash('sha256').update(readFileSync(first.modelPath)).digest('hex'));
    expect(card.temperature).toBeGreaterThan(0);
    expect(card.reviewThreshold).toBeGreaterThanOrEqual(0.5);
    expect(card.reviewThreshold).toBeLessThanOrEqual(0.99);
    expect(card.preprocessing).toMatchObject({ crop: 'cell', cropPadding: 0.1, inputSize: 224 });
    // Counts are what the folder holds: the corrupt file is an image file, the .txt is not.
    expect(card.training.counts).toEqual({
      data: { eosinophil: PER_CLASS, lymphocyte: PER_CLASS, monocyte: PER_CLASS + 1, neutrophil: PER_CLASS },
    });
    expect(card.training.augmentedViews).toBe(2);
    expect(first.dataset.skipped.nonImage).toBe(1);
    expect(first.failed.map((f) => f.path)).toEqual([join(data, 'monocyte', 'zz-corrupt.jpg')]);
    expect(first.failed[0].reason).toMatch(/corrupt or truncated/);
    // Validation: a quarter of each class (grouped by file), the corrupt image gives no row.
    expect(card.validation.n).toBeGreaterThanOrEqual(FOUR_CLASSES.length);
    expect(card.validation.n).toBeLessThan((PER_CLASS * FOUR_CLASSES.length) / 2);
    expect(card.validation.perSource.data.n).toBe(card.validation.n);
    for (const m of [card.validation.accuracy, card.validation.macroF1, card.validation.ece]) {
      expect(m).toBeGreaterThanOrEqual(0);
      expect(m).toBeLessThanOrEqual(1);
    }
    // The 8 test-time views, calibrated and scored on the same validation images.
    const views = card.testTimeAugmentation!;
    expect(views.views).toBe(8);
    expect(views.temperature).toBeGreaterThan(0);
    expect(views.reviewThreshold).toBeGreaterThanOrEqual(0.5);
    expect(views.reviewThreshold).toBeLessThanOrEqual(0.99);
    expect(views.validation.n).toBe(card.validation.n);
    expect(views.validation.perSource.data.n).toBe(card.validation.n);
  });

  it('loads as a Classifier and evaluates well above chance on its own images', async () => {
    const classifier = await Classifier.load(first.modelPath);
    try {
      expect(classifier.classes).toEqual(FOUR_CLASSES);
      expect(classifier.hasTta).toBe(true);
      const r = await evaluateModel(classifier, [data], { concurrency: 2 });
      expect(r.n).toBe(goodImages.length);
      expect(r.unreadable.map((u) => u.path)).toEqual([join(data, 'monocyte', 'zz-corrupt.jpg')]);
      expect(r.skipped.nonImage).toBe(1);
      console.info(`[round trip] accuracy on the ${r.n} training images: ${r.accuracy.toFixed(3)}`);
      expect(r.accuracy).toBeGreaterThan(0.5);
    } finally {
      await classifier.close();
    }
  });

  it('a rerun reads every feature from the cache and writes the same model', async () => {
    // The cache, checked directly: every readable image is a hit, the corrupt one fails again.
    const ds = await scanDatasets([data]);
    const extractor = await FeatureExtractor.load(options.backbone!);
    const feats = await computeFeatures(ds.items, extractor, first.card.preprocessing, {
      views: options.views,
      seed: options.seed,
      cacheDir: options.cacheDir,
    }).finally(() => extractor.close());
    expect(feats.cached).toBe(goodImages.length);
    expect(feats.n).toBe(goodImages.length * options.views);
    expect(feats.failed).toHaveLength(1);

    let lastCached = -1;
    const second = await trainModel({
      ...options,
      out: join(tmp, 'model-2'),
      onFeatures: (_done, _total, cached) => (lastCached = cached),
    });
    expect(lastCached).toBe(goodImages.length);
    // The head is a deterministic function of the features, so only the timestamps may differ.
    expect(second.card.modelSha256).toBe(first.card.modelSha256);
    const strip = ({ createdAt: _c, version: _v, ...rest }: ModelCard) => rest;
    expect(strip(second.card)).toEqual(strip(first.card));
    expect(readFileSync(second.modelPath).equals(readFileSync(first.modelPath))).toBe(true);
  });
});
