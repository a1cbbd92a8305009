/**
 * Gives a trained model its familiarity checks (`unfamiliar_cell`, `unfamiliar_image`): the model's own
 * features of its training images, one view each, fitted into references (training/familiarity.ts) and
 * added to the model file as two more outputs; the card records the thresholds and what they flag on
 * validation. Run after training, by `train` itself and by `hematovision familiarize` for an older model.
 */
import { readFileSync } from 'node:fs';
import { DatasetError, ModelError } from '../errors.js';
import { floatModelWithCard } from '../model/classifier.js';
import { appendFamiliarity } from '../model/familiarity-graph.js';
import { readFloatInitializers } from '../model/onnx/graph-builder.js';
import { argmax, softmaxRows } from '../model/softmax.js';
import { FeatureExtractor } from '../model/feature-extractor.js';
import type { FamiliarityRecord, ModelCard } from '../model/types.js';
import { scanDatasets } from './dataset.js';
import { computeFeatures } from './feature-cache.js';
import { fitFamiliarity } from './familiarity.js';
import { foldedLogits } from './head.js';
import { measureTrainingStats, writeStats } from './activation-stats.js';
import { capReviewThreshold, REVIEW_BUDGET } from './review-budget.js';
import { groupedStratifiedSplit } from './split.js';
import { writeAtomic } from './files.js';
import { cardHeader } from './model-card.js';

export interface FamiliarizeOptions {
  /** A model folder or model.onnx (its card beside it). */
  model: string;
  /** The folders it was trained on: the same grouped split is drawn again (the card's seed). */
  data: string[];
  valFraction: number;
  cacheDir: string;
  onProgress?: (done: number, total: number, cached: number) => void;
  onStage?: (stage: string) => void;
}

/** Top calibrated probability of the given rows, from the model's head (head/W, head/b) and temperature. */
function headConfidences(
  model: Uint8Array,
  x: Float32Array,
  d: number,
  rows: number[],
  k: number,
  temperature: number,
): Float32Array {
  const init = readFloatInitializers(model);
  const w = init.get('head/W');
  const b = init.get('head/b');
  if (!w || !b || w.length !== k * d)
    throw new ModelError('The model has no head this version can read.', 'bad_model');
  const p = softmaxRows(foldedLogits(w, b, x, d, rows), k, temperature);
  return Float32Array.from({ length: rows.length }, (_, j) => p[j * k + argmax(p, j, k)]);
}

/**
 * Measures only the training statistics `hematovision adapt` aligns to and binds them to the card (the model
 * file is not changed): for a model familiarized before they existed, such as the bundled one.
 */
export async function addTrainingStats(
  o: Pick<FamiliarizeOptions, 'model' | 'data' | 'onProgress'>,
): Promise<ModelCard> {
  const { modelPath, cardPath, card } = floatModelWithCard(o.model);
  const ds = await scanDatasets(o.data, { knownClasses: card.classes });
  const activationStats = await trainingStats(
    modelPath,
    readFileSync(modelPath),
    ds.items,
    card,
    o.onProgress,
  );
  const next: ModelCard = { ...card, activationStats };
  writeAtomic(cardPath, Buffer.from(JSON.stringify(next, null, 2) + '\n'));
  return next;
}

/** Measures and writes the side file; returns the card's record of it. */
async function trainingStats(
  modelPath: string,
  bytes: Uint8Array,
  items: Parameters<typeof measureTrainingStats>[1],
  card: ModelCard,
  onProgress?: FamiliarizeOptions['onProgress'],
) {
  const measured = await measureTrainingStats(bytes, items, card.preprocessing, {
    seed: card.training.seed,
    onProgress: onProgress && ((d, t) => onProgress(d, t, 0)),
  });
  return writeStats(modelPath, measured.stats, {
    images: measured.images,
    bySource: measured.bySource,
    description:
      'per-channel mean and variance of every convolution’s output (before its activation), one ' +
      'unaugmented crop per image, drawn evenly across the training sources',
  });
}

export async function familiarizeModel(
  o: FamiliarizeOptions,
): Promise<{ card: ModelCard; record: FamiliarityRecord; failed: number }> {
  const { modelPath, cardPath, card } = floatModelWithCard(o.model);
  const ds = await scanDatasets(o.data, { classes: card.classes });
  const missing = card.classes.filter((_, c) => !ds.items.some((it) => it.labelIndex === c));
  if (missing.length > 0)
    throw new DatasetError(
      `The data holds no images of ${missing.join(', ')}: give the folders it was trained on.`,
    );
  const split = groupedStratifiedSplit(ds.items, { valFraction: o.valFraction, seed: card.training.seed });
  const isValItem = new Uint8Array(ds.items.length);
  for (const i of split.val) isValItem[i] = 1;

  const extractor = await FeatureExtractor.load(modelPath);
  let feats;
  try {
    feats = await computeFeatures(ds.items, extractor, card.preprocessing, {
      views: 1,
      seed: card.training.seed,
      cacheDir: o.cacheDir,
      onProgress: o.onProgress,
    });
  } finally {
    await extractor.close();
  }
  const item = (r: number) => ds.items[feats.item[r]];
  const { references, record, val } = fitFamiliarity(
    {
      x: feats.x,
      n: feats.n,
      d: feats.d,
      label: Int32Array.from({ length: feats.n }, (_, r) => item(r).labelIndex),
      source: Int32Array.from({ length: feats.n }, (_, r) => item(r).source),
      isVal: Uint8Array.from({ length: feats.n }, (_, r) => isValItem[feats.item[r]]),
    },
    card.classes,
    ds.sources.map((s) => s.name),
    extractor.blockDims,
    { seed: card.training.seed },
  );
  const bytes = readFileSync(modelPath);
  // The review budget: the validation rows' confidences from the model's own head on these features.
  const confidence = headConfidences(
    bytes,
    feats.x,
    feats.d,
    val.rows,
    card.classes.length,
    card.temperature,
  );
  const budget = capReviewThreshold(
    val.rows.map((r, j) => ({
      confidence: confidence[j],
      flagged: val.flagged[j] === 1,
      source: item(r).source,
    })),
    ds.sources.map((s) => s.name),
    card.reviewThreshold,
  );
  const onnx = appendFamiliarity(bytes, references);
  // The training statistics a lab aligns its images to (`hematovision adapt`): it has not got this data.
  o.onStage?.('Training statistics of every convolution (for hematovision adapt)');
  const activationStats = await trainingStats(modelPath, bytes, ds.items, card, o.onProgress);
  const header = cardHeader(card.name, card.classes, onnx);
  const next: ModelCard = {
    ...card,
    activationStats,
    modelSha256: header.modelSha256,
    reviewThreshold: budget.threshold,
    familiarity: {
      ...record,
      reviewBudget: { budget: REVIEW_BUDGET, before: card.reviewThreshold, reviewRate: budget.reviewRate },
    },
  };
  // Model first, then card: until the card lands, the pair's sha256 disagrees and nothing runs the model.
  writeAtomic(modelPath, onnx);
  writeAtomic(cardPath, Buffer.from(JSON.stringify(next, null, 2) + '\n'));
  return { card: next, record, failed: feats.failed.length };
}
