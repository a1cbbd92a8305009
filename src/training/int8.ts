/**
 * `export --int8`: a trained model quantized to int8 (QDQ) with ranges calibrated on images, written with a
 * card of its own beside it (`model.int8.onnx` + `model.int8.json`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import { DatasetError, HematoError, ModelError } from '../errors.js';
import { createRng, shuffled } from '../imaging/random.js';
import type { RgbImage } from '../imaging/types.js';
import { cardPathFor, resolveModelPath } from '../model/classifier.js';
import { prepareImage, writeInput } from '../model/inputs.js';
import { calibrateRanges, DEFAULT_PERCENTILE, type CalibrationMethod } from '../model/onnx/calibrate.js';
import { planQuantization, quantizeModel, type ActivationType } from '../model/onnx/quantize.js';
import { OnnxSession, type FloatTensor } from '../model/onnx/runtime.js';
import { OUTPUTS } from '../model/classifier-graph.js';
import {
  halveNeighbours,
  readFamiliarity,
  setCellScales,
  shiftFamiliarityMeans,
} from '../model/familiarity-graph.js';
import { cellDistanceParts, type CellDistanceParts } from '../model/familiarity.js';
import type { ModelCard, QuantizationRecord } from '../model/types.js';
import { IMAGE_EXTENSIONS } from './dataset.js';
import { writeAtomic } from './files.js';

/**
 * The classifier head (its Gemm, softmax and class-activation Conv) and the familiarity distances stay
 * float: they are a tiny share of the work, and their outputs are what calibration and the review flags
 * are measured on.
 */
export const KEEP_FLOAT = ['head/', 'familiarity/'];
/** The int8 model's file name beside (or instead of) `model.onnx`. */
export const INT8_MODEL_FILE = 'model.int8.onnx';

export interface ExportInt8Options {
  /** model.onnx (or its folder) with its card. */
  model: string;
  /** Folders of images (any layout, labels unused) to calibrate on. */
  data: string[];
  /** Folder the int8 model and its card are written to. */
  out: string;
  /** At most this many images, drawn at random (seeded) from all found. */
  images?: number;
  method?: CalibrationMethod;
  percentile?: number;
  activations?: ActivationType;
  seed?: number;
  /** Activations left float (see `QuantizeOptions.floatTensors`); none by default. */
  floatTensors?: string[];
  onStage?: (stage: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ExportInt8Result {
  modelPath: string;
  cardPath: string;
  card: ModelCard;
  bytes: { float: number; int8: number };
  /** Images calibrated on, and those skipped (unreadable, or no white cell found). */
  images: { used: number; skipped: number };
}

/** Every image file under the folders, in a stable order. */
export function listImages(dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      // Symlinked files count (a calibration set is often a folder of links); symlinked folders are not followed.
      if (e.isDirectory()) walk(p);
      else if (
        IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase()) &&
        statSync(p, { throwIfNoEntry: false })?.isFile()
      )
        out.push(p);
    }
  };
  for (const d of dirs) {
    if (!existsSync(d) || !statSync(d).isDirectory())
      throw new DatasetError(`Calibration folder not found: ${d}`);
    walk(resolve(d));
  }
  return out;
}

const BATCH = 8;

/** Every row of some outputs of a model over the calibration batches, concatenated per output. */
async function outputsOver(
  model: Uint8Array,
  names: string[],
  batches: () => Iterable<FloatTensor>,
): Promise<Record<string, { data: Float32Array; width: number }>> {
  const session = await OnnxSession.create(model, 2, { spin: false });
  try {
    const parts: Record<string, Float32Array[]> = Object.fromEntries(names.map((n) => [n, []]));
    let rows = 0;
    for (const batch of batches()) {
      const r = await session.run({ input: batch }, names);
      for (const n of names) parts[n].push(r[n].data.slice());
      rows += batch.dims[0];
    }
    return Object.fromEntries(
      names.map((n) => {
        const data = new Float32Array(parts[n].reduce((a, p) => a + p.length, 0));
        let off = 0;
        for (const p of parts[n]) data.set(p, (off += p.length) - p.length);
        return [n, { data, width: data.length / rows }];
      }),
    );
  } finally {
    await session.close();
  }
}

function quantileOf(values: Float32Array, q: number): number {
  const s = Float32Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/**
 * The familiarity checks of an int8 copy, brought back to the float model's scale. Rounding moves the pooled
 * features a little, mostly alike on every image, but the distances standardise each feature by its spread
 * over the training images, which for many features is smaller than that move: first the references' means
 * move by the mean int8 − float feature difference on the calibration images; then each check's threshold
 * scales by how the remaining noise stretches its values there (the ratio of int8 to float values at the
 * check's own quantile). The parts of the cell check stretch differently (the Mahalanobis distance over
 * thousands of standardised features far more than the block heads' disagreement or the nearest cells'
 * cosine), so each is scaled on its own: one ratio for the combined distance loosened the other two.
 */
async function adaptFamiliarity(
  float: Uint8Array,
  int8: Uint8Array,
  card: ModelCard,
  batches: () => Iterable<FloatTensor>,
): Promise<{ bytes: Uint8Array; familiarity: NonNullable<ModelCard['familiarity']> }> {
  const f = card.familiarity!;
  const a = await outputsOver(float, [OUTPUTS.features, OUTPUTS.imageDistance], batches);
  const b = await outputsOver(int8, [OUTPUTS.features], batches);
  const d = a[OUTPUTS.features].width;
  const shift = new Float64Array(d);
  const fa = a[OUTPUTS.features].data;
  const fb = b[OUTPUTS.features].data;
  for (let i = 0; i < fa.length; i++) shift[i % d] += fb[i] - fa[i];
  const rows = fa.length / d;
  // The stored cells at half precision keep the int8 file small; the thresholds below are measured on it.
  const shifted = halveNeighbours(
    shiftFamiliarityMeans(
      int8,
      Float32Array.from(shift, (v) => v / rows),
    ),
  );
  const names = { cell: f.cell.components, image: f.image.components };
  const parts = (model: Uint8Array, features: Float32Array) => {
    const refs = readFamiliarity(model, names);
    if (!refs) throw new ModelError('The model has no familiarity references.', 'bad_model');
    return { refs, rows: Array.from({ length: rows }, (_, r) => cellDistanceParts(refs, features, d, r)) };
  };
  const pf = parts(float, fa);
  const pi = parts(shifted, fb);
  const ratio = (key: keyof CellDistanceParts, q: number) => {
    const of = (p: typeof pf) =>
      quantileOf(
        Float32Array.from(p.rows, (r) => r[key] ?? 0),
        q,
      );
    return of(pi) / of(pf);
  };
  const cellRatio = ratio('mahalanobis', f.cell.quantile);
  // A part flags where its value over its lab's threshold, times cellScale, passes the cell threshold: the
  // new scale keeps that line where the part's own int8 values put the float one.
  const scaleOf = (key: 'disagreement' | 'neighbours', q: number | undefined) => {
    const ref = pf.refs[key];
    return ref && q !== undefined ? (ref.cellScale * cellRatio) / ratio(key, q) : undefined;
  };
  const bytes = setCellScales(shifted, {
    disagreement: scaleOf('disagreement', f.disagreement?.quantile),
    neighbours: scaleOf('neighbours', f.neighbours?.quantile),
  });
  const c = await outputsOver(bytes, [OUTPUTS.imageDistance], batches);
  const image =
    f.image.threshold *
    (quantileOf(c[OUTPUTS.imageDistance].data, f.image.quantile) /
      quantileOf(a[OUTPUTS.imageDistance].data, f.image.quantile));
  return {
    bytes,
    familiarity: {
      ...f,
      cell: { ...f.cell, threshold: f.cell.threshold * cellRatio },
      image: { ...f.image, threshold: image },
    },
  };
}

export async function exportInt8(o: ExportInt8Options): Promise<ExportInt8Result> {
  const stage = o.onStage ?? (() => {});
  const modelPath = resolveModelPath(o.model);
  const floatCardPath = cardPathFor(modelPath);
  if (!existsSync(floatCardPath))
    throw new ModelError(`Model card not found: ${floatCardPath}`, 'card_not_found');
  const card = JSON.parse(readFileSync(floatCardPath, 'utf8')) as ModelCard;
  if (card.quantization) throw new ModelError(`${modelPath} is already quantized.`, 'bad_model');
  const floatBytes = readFileSync(modelPath);
  const sha = createHash('sha256').update(floatBytes).digest('hex');
  if (sha !== card.modelSha256)
    throw new ModelError(`Model file ${modelPath} does not match its card (sha256).`, 'sha256_mismatch');

  const method = o.method ?? 'minmax';
  const activations = o.activations ?? 'uint8';
  const seed = o.seed ?? 42;
  const all = listImages(o.data);
  const picked = shuffled(all, createRng(seed)).slice(0, o.images ?? 256);
  stage(`Preparing ${picked.length} of ${all.length} calibration images`);
  const pixels: RgbImage[] = [];
  let skipped = 0;
  for (const path of picked) {
    try {
      const prepared = await prepareImage(path, card.preprocessing, { primaryOnly: true });
      if (prepared.regions.length === 0) skipped++;
      else pixels.push(prepared.regions[0].pixels);
    } catch (e) {
      // An image that cannot be read is skipped, as `evaluate` does; anything else is a bug.
      if (!(e instanceof HematoError)) throw e;
      skipped++;
    }
  }
  if (pixels.length === 0)
    throw new DatasetError(`No usable calibration image in ${o.data.join(', ')} (found ${all.length}).`);

  const size = card.preprocessing.inputSize;
  const one = 3 * size * size;
  function* batches(): Iterable<FloatTensor> {
    for (let s = 0; s < pixels.length; s += BATCH) {
      const m = Math.min(BATCH, pixels.length - s);
      const data = new Float32Array(m * one);
      for (let i = 0; i < m; i++) writeInput(pixels[s + i], data, i);
      yield { data, dims: [m, 3, size, size] };
    }
  }
  const floatTensors = o.floatTensors ?? [];
  const plan = planQuantization(floatBytes, KEEP_FLOAT, floatTensors);
  stage(`Calibrating ${plan.tensors.length} activations (${method}) on ${pixels.length} images`);
  const ranges = await calibrateRanges(floatBytes, plan.tensors, batches, {
    method,
    percentile: o.percentile,
    onProgress: o.onProgress,
  });
  stage('Quantizing');
  const q = quantizeModel(floatBytes, ranges, { activations, keepFloat: KEEP_FLOAT, floatTensors });
  let bytes = q.bytes;
  let familiarity = card.familiarity;
  if (card.familiarity) {
    stage('Adapting the familiarity checks to the int8 features');
    ({ bytes, familiarity } = await adaptFamiliarity(floatBytes, bytes, card, batches));
  }

  const quantization: QuantizationRecord = {
    format: 'QDQ (QuantizeLinear/DequantizeLinear around Conv and residual Add, fused by ONNX Runtime)',
    weights: 'int8, symmetric (−127…127), one scale per output channel; biases int32',
    activations: `${activations}, asymmetric, one scale and zero point per tensor`,
    calibration: {
      method,
      ...(method === 'percentile' ? { percentile: o.percentile ?? DEFAULT_PERCENTILE } : {}),
      images: pixels.length,
      skipped,
      seed,
      sources: o.data.map((d) => relative(process.cwd(), resolve(d)) || '.'),
    },
    quantized: q.counts,
    float: [...KEEP_FLOAT.map((p) => p.replace(/\/$/, '')), ...floatTensors],
    from: { modelFile: basename(modelPath), modelSha256: sha },
    ...(card.familiarity
      ? {
          familiarity:
            "the references' feature means moved by the mean int8 − float feature difference on the " +
            'calibration images; each check\u2019s threshold (each part of the cell check apart) scaled by ' +
            'the int8 / float ratio of its values at its quantile there',
          floatThresholds: { cell: card.familiarity.cell.threshold, image: card.familiarity.image.threshold },
        }
      : {}),
  };
  const next: ModelCard = {
    ...card,
    // Named apart, so the server, its records and reports say which of the two answered.
    name: `${card.name}-int8`,
    createdAt: new Date().toISOString(),
    modelFile: INT8_MODEL_FILE,
    modelSha256: createHash('sha256').update(bytes).digest('hex'),
    quantization,
    ...(familiarity ? { familiarity } : {}),
  };
  mkdirSync(o.out, { recursive: true });
  const outModel = join(o.out, INT8_MODEL_FILE);
  const outCard = outModel.replace(/\.onnx$/, '.json');
  // Model first, then card: until the card lands, the pair's sha256 disagrees and nothing runs the model.
  writeAtomic(outModel, bytes);
  writeAtomic(outCard, Buffer.from(JSON.stringify(next, null, 2) + '\n'));
  return {
    modelPath: outModel,
    cardPath: outCard,
    card: next,
    bytes: { float: floatBytes.byteLength, int8: bytes.byteLength },
    images: { used: pixels.length, skipped },
  };
}
