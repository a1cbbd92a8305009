/**
 * `hematovision adapt`: a model aligned to one lab's images, without labels. Each convolution's output is
 * rescaled per channel so that the lab's images give it the training data's mean and spread
 * (model/alignment.ts), then the image-familiarity reference is centred on the lab's aligned images so they
 * count as familiar. The result is a normal model folder (model.onnx, model.json, the statistics file).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatasetError, ModelError } from '../errors.js';
import { createRng, shuffled } from '../imaging/random.js';
import {
  alignmentAffine,
  ChannelStatsRunner,
  foldChannelAffine,
  statsMismatch,
  type LayerStats,
  type StatsMismatch,
} from '../model/alignment.js';
import { floatModelWithCard } from '../model/classifier.js';
import {
  cellDistance,
  referenceDistance,
  type FamiliarityReferences,
  type GaussianReference,
} from '../model/familiarity.js';
import { appendFamiliarity, readFamiliarity } from '../model/familiarity-graph.js';
import type { AdaptationRecord, FamiliarityCheck, ModelCard } from '../model/types.js';
import { fitReference, referenceDistances } from './familiarity.js';
import { quantile } from './quantile.js';
import {
  evenSample,
  loadCrops,
  measureTrainingStats,
  readStats,
  runCrops,
  writeStats,
  type Crops,
} from './activation-stats.js';
import { listImageFiles, scanDatasets } from './dataset.js';
import { writeAtomic } from './files.js';
import { cardHeader } from './model-card.js';

/** Images per batch of the first pass, whose batch statistics normalise each layer's input. */
const BN_BATCH = 32;

/** Fewer images than this give per-channel statistics too noisy to align a whole network on. */
export const MIN_ADAPT_IMAGES = 50;

export const ADAPT_DEFAULTS = {
  /** Images read at most (an even sample of the folder's files beyond this). */
  maxImages: 1000,
  /** Images each alignment pass measures (an even sample of the usable crops). */
  statsImages: 500,
  /** Passes: one measuring every layer with its input aligned, then measure-then-fold corrections. */
  passes: 2,
};

export interface AdaptOptions {
  /** Folders of the lab's images (nested folders and class folders are fine; labels are not read). */
  data: string[];
  /** The model to adapt: a folder or model.onnx with its card. It is not changed. */
  model: string;
  /** Folder for the adapted model; not the parent's. */
  out: string;
  /** The lab's name in the card (default: the folder's name). */
  lab?: string;
  /** The folders the model was trained on, used when its card carries no training statistics. */
  reference?: string[];
  maxImages?: number;
  statsImages?: number;
  passes?: number;
  onStage?: (stage: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface AdaptResult {
  card: ModelCard;
  modelPath: string;
  /** Shares of lab images each familiarity check flags: the parent's on the sample, the new one on held-out images. */
  flagged: {
    before: { unfamiliarImage: number; unfamiliarCell: number } | null;
    after: { unfamiliarImage: number; unfamiliarCell: number } | null;
  };
  /** Mismatch before alignment and after every pass (the last measured on every crop). */
  mismatch: StatsMismatch[];
  seconds: number;
}

function loadParent(model: string): { path: string; card: ModelCard; bytes: Buffer } {
  const { modelPath: path, card } = floatModelWithCard(model);
  const bytes = readFileSync(path);
  if (createHash('sha256').update(bytes).digest('hex') !== card.modelSha256)
    throw new ModelError(`${path} does not match its card (sha256): refusing to adapt it.`, 'bad_model');
  return { path, card, bytes };
}

/** The lab's image files, checked for number before anything is decoded. */
async function labImages(dirs: string[], max: number): Promise<{ files: string[]; found: number }> {
  if (dirs.length === 0) throw new DatasetError('No folder of the lab’s images given.');
  const all: string[] = [];
  for (const d of dirs) all.push(...(await listImageFiles(d)));
  if (all.length === 0)
    throw new DatasetError(
      `No images found in ${dirs.join(', ')} (looked for .jpg, .png, .tif, .bmp, .webp).`,
    );
  if (all.length < MIN_ADAPT_IMAGES)
    throw new DatasetError(
      `Adapting needs at least ${MIN_ADAPT_IMAGES} images of the lab; ${dirs.join(', ')} holds ${all.length}.`,
    );
  return { files: evenSample(all.length, max).map((i) => all[i]), found: all.length };
}

/** Lab rows each familiarity check flags, as shares. */
function flaggedShares(
  refs: FamiliarityReferences,
  t: { cell: number; image: number },
  x: Float32Array,
  n: number,
  d: number,
): { unfamiliarImage: number; unfamiliarCell: number } {
  let img = 0;
  let cell = 0;
  for (let r = 0; r < n; r++) {
    if (referenceDistance(refs.image, x, d, r) > t.image) img++;
    if (cellDistance(refs, x, d, r) > t.cell) cell++;
  }
  return { unfamiliarImage: img / n, unfamiliarCell: cell / n };
}

/**
 * The image reference refitted on the lab's aligned images alone (one component, the lab; no labels): the
 * same columns and rank as the parent's, fitted on four in five images, the threshold the parent's quantile
 * of the other fifth's distances, as `familiarize` chooses it on held-out images.
 */
function refitImageReference(
  parent: GaussianReference,
  check: FamiliarityCheck,
  lab: string,
  x: Float32Array,
  n: number,
  D: number,
): { ref: GaussianReference; threshold: number; heldOut: number[] } {
  const fit: number[] = [];
  const heldOut: number[] = [];
  for (let r = 0; r < n; r++) (r % 5 === 4 ? heldOut : fit).push(r);
  const rows = new Float32Array(fit.length * D);
  fit.forEach((r, j) => rows.set(x.subarray(r * D, (r + 1) * D), j * D));
  const ref = fitReference(rows, fit.length, D, new Int32Array(fit.length), [lab], {
    columns: parent.columns,
    rank: Math.min(check.rank, fit.length - 2),
    seed: 7,
  });
  const threshold = quantile(referenceDistances(ref, x, D, heldOut), check.quantile);
  return { ref, threshold, heldOut };
}

/** One run of the model over crops: their features (rows in `indices` order) and channel statistics. */
async function runModel(
  model: Uint8Array,
  crops: Crops,
  indices: number[],
  o: {
    normalizeTo?: LayerStats;
    batch?: number;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<{ features: Float32Array; stats: LayerStats }> {
  const runner = await ChannelStatsRunner.create(model, 2, o.normalizeTo);
  try {
    const parts = await runCrops(runner, crops, indices, o.batch ?? 16, o.onProgress);
    return { features: concat(parts), stats: runner.stats() };
  } finally {
    await runner.close();
  }
}

const thresholds = (cell: number, image: number) => ({ cell, image });

const concat = (parts: Float32Array[]) => {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
};

export async function adaptModel(o: AdaptOptions): Promise<AdaptResult> {
  const t0 = performance.now();
  const opts = { ...ADAPT_DEFAULTS, ...stripUndefined(o) };
  const parent = loadParent(o.model);
  const outDir = resolve(o.out);
  if (outDir === dirname(parent.path))
    throw new DatasetError('--out is the model’s own folder: give a new folder, the parent model is kept.');
  const { files, found } = await labImages(o.data, opts.maxImages);
  const lab = o.lab ?? labName(o.data);

  let reference: LayerStats;
  let statsRecord = parent.card.activationStats;
  let statsBytes: Buffer | null = null;
  let measured: (Awaited<ReturnType<typeof measureTrainingStats>> & { from: string }) | null = null;
  if (statsRecord || !o.reference || o.reference.length === 0) {
    reference = readStats(parent.path, parent.card); // without statistics, throws the clear error
    statsBytes = readFileSync(join(dirname(parent.path), statsRecord!.file));
  } else {
    o.onStage?.('Training statistics, from the reference folders');
    const ds = await scanDatasets(o.reference, { knownClasses: parent.card.classes });
    measured = {
      ...(await measureTrainingStats(parent.bytes, ds.items, parent.card.preprocessing, {
        seed: parent.card.training.seed,
        onProgress: o.onProgress,
      })),
      from: ds.sources.map((s) => s.name).join(', '),
    };
    reference = measured.stats;
  }

  o.onStage?.('Reading the lab’s images');
  const crops: Crops = await loadCrops(files, parent.card.preprocessing, o.onProgress);
  if (crops.pixels.length < MIN_ADAPT_IMAGES)
    throw new DatasetError(
      `Adapting needs at least ${MIN_ADAPT_IMAGES} usable images of the lab; only ${crops.pixels.length} of ` +
        `${files.length} could be read${parent.card.preprocessing.crop === 'cell' ? ' with a white cell found' : ''}` +
        (crops.failed[0] ? ` (e.g. ${basename(crops.failed[0].path)}: ${crops.failed[0].reason})` : '') +
        '.',
    );

  const all = crops.pixels.map((_, i) => i);
  // Shuffled: the first pass normalises each batch by its own statistics, so no batch should be one class.
  const sample = shuffled(
    evenSample(crops.pixels.length, opts.statsImages),
    createRng(parent.card.training.seed),
  );
  let model: Uint8Array = parent.bytes;
  const mismatch: StatsMismatch[] = [];
  let clamped = 0;
  const run = (indices: number[], o2: { normalizeTo?: LayerStats; batch?: number } = {}) =>
    runModel(model, crops, indices, { ...o2, onProgress: o.onProgress });
  // Unaligned: the sample's features (for the before/after counts) and statistics as they are.
  o.onStage?.('The model as it is');
  const unaligned = await run(sample);
  const before = unaligned.features;
  mismatch.push(statsMismatch(unaligned.stats, reference));
  for (let pass = 1; pass <= opts.passes; pass++) {
    o.onStage?.(`Alignment pass ${pass} of ${opts.passes}`);
    // Pass 1 measures each layer with the layers before it already aligned (batch norm on each batch of
    // BN_BATCH, AdaBN's measurement), in one run; later passes measure the folded model and correct what
    // per-batch statistics left.
    const m = await run(sample, pass === 1 ? { normalizeTo: reference, batch: BN_BATCH } : {});
    const a = alignmentAffine(m.stats, reference);
    clamped = a.clamped;
    model = foldChannelAffine(model, a.affine);
  }
  o.onStage?.('The aligned model on every image');
  const final = await run(all);
  const after = final.features;
  mismatch.push(statsMismatch(final.stats, reference));

  const n = crops.pixels.length;
  const fam = parent.card.familiarity;
  const refs = fam
    ? readFamiliarity(parent.bytes, { cell: fam.cell.components, image: fam.image.components })
    : null;
  let flagged: AdaptResult['flagged'] = { before: null, after: null };
  let familiarity = parent.card.familiarity;
  let familiarityNote = 'the parent model has no familiarity checks; none added';
  if (fam && refs) {
    const d = after.length / n;
    const refit = refitImageReference(refs.image, fam.image, lab, after, n, d);
    // One lab now, so one threshold per per-lab check: the parent's loosest, as no labels here can choose one.
    const loosest = (t: Float32Array) => Float32Array.of(Math.max(...t));
    // One lab now: class centres that measured only one of the parent's labs (a lab added from reviewed
    // cells) measure every row, as the image reference can no longer tell the labs apart.
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { componentLab, ...cellRef } = refs.cell;
    const adapted: FamiliarityReferences = {
      cell: cellRef,
      image: refit.ref,
      ...(refs.disagreement && {
        disagreement: { ...refs.disagreement, thresholds: loosest(refs.disagreement.thresholds) },
      }),
      ...(refs.neighbours && {
        neighbours: { ...refs.neighbours, thresholds: loosest(refs.neighbours.thresholds) },
      }),
    };
    model = appendFamiliarity(model, adapted);
    const held = new Float32Array(refit.heldOut.length * d);
    refit.heldOut.forEach((r, j) => held.set(after.subarray(r * d, (r + 1) * d), j * d));
    flagged = {
      before: flaggedShares(
        refs,
        thresholds(fam.cell.threshold, fam.image.threshold),
        before!,
        sample.length,
        d,
      ),
      after: flaggedShares(
        adapted,
        thresholds(fam.cell.threshold, refit.threshold),
        held,
        refit.heldOut.length,
        d,
      ),
    };
    familiarity = {
      ...fam,
      image: {
        ...fam.image,
        threshold: refit.threshold,
        components: [lab],
        rank: refit.ref.invSqrtEig.length,
      },
      ...(fam.disagreement && {
        disagreement: {
          ...fam.disagreement,
          thresholds: { [lab]: Math.max(...Object.values(fam.disagreement.thresholds)) },
        },
      }),
      ...(fam.neighbours && {
        neighbours: {
          ...fam.neighbours,
          thresholds: { [lab]: Math.max(...Object.values(fam.neighbours.thresholds)) },
        },
      }),
    };
    familiarityNote =
      `unfamiliar_image: refitted on the lab's aligned images (one component, the lab; fitted on ` +
      `${n - refit.heldOut.length}, threshold the ${fam.image.quantile} quantile of the other ` +
      `${refit.heldOut.length} images' distances; no labels needed). unfamiliar_cell: the parent's ` +
      'reference and threshold, unchanged (its class centres need labels)' +
      (refs.disagreement || refs.neighbours
        ? `; ${[
            refs.disagreement && "the block heads' disagreement",
            refs.neighbours && 'the nearest stored cells',
          ]
            .filter(Boolean)
            .join(' and ')} at the loosest of the parent's lab thresholds.`
        : '.');
  }

  const mism = mismatch[mismatch.length - 1];
  const adaptation: AdaptationRecord = {
    method:
      'AdaBN-style alignment of the folded batch norm: per output channel of every convolution, weights and ' +
      'bias rescaled so that the lab’s images give its output the training data’s mean and standard ' +
      'deviation; measured first with every layer’s input already aligned (batch norm on batches of ' +
      `${BN_BATCH} of the lab's images), then ${opts.passes - 1} pass(es) of measure-then-fold on the folded model`,
    folders: o.data.map((d) => basename(resolve(d))),
    images: n,
    found,
    skipped: crops.failed.length,
    statsImages: sample.length,
    date: new Date().toISOString(),
    parent: {
      name: parent.card.name,
      version: parent.card.version,
      modelSha256: parent.card.modelSha256,
    },
    passes: opts.passes,
    residual: mism,
    clampedChannels: clamped,
    familiarity: familiarityNote,
    keptFromParent:
      'temperature, review threshold, test-time augmentation, validation and the unfamiliar_cell check are the ' +
      'parent’s, measured on its labelled validation images before alignment: without labels nothing here ' +
      'can re-measure them on this lab',
  };
  const header = cardHeader(`${parent.card.name}-${slug(lab)}`, parent.card.classes, model);
  const card: ModelCard = {
    ...parent.card,
    ...header,
    ...(familiarity ? { familiarity } : {}),
    adaptation,
  };
  mkdirSync(outDir, { recursive: true });
  const modelPath = join(outDir, 'model.onnx');
  if (statsBytes && statsRecord) writeAtomic(join(outDir, statsRecord.file), statsBytes);
  else if (measured)
    statsRecord = writeStats(modelPath, measured.stats, {
      images: measured.images,
      bySource: measured.bySource,
      description: `measured by adapt from the parent's training folders (${measured.from})`,
    });
  card.activationStats = statsRecord;
  writeAtomic(modelPath, model);
  writeAtomic(join(outDir, 'model.json'), Buffer.from(JSON.stringify(card, null, 2) + '\n'));
  return { card, modelPath, flagged, mismatch, seconds: (performance.now() - t0) / 1000 };
}

/** The lab's name from its folders: the one folder's name (its parent's for TRAIN, test…), or the parent several share. */
const SPLIT_NAME = /^(train|training|test|testing|val|valid|validation)$/i;

function labName(dirs: string[]): string {
  const abs = dirs.map((d) => resolve(d));
  if (abs.length === 1)
    return SPLIT_NAME.test(basename(abs[0])) ? basename(dirname(abs[0])) : basename(abs[0]);
  const parents = new Set(abs.map((d) => dirname(d)));
  return parents.size === 1 ? basename([...parents][0]) : abs.map((d) => basename(d)).join('+');
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '') || 'lab';

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
