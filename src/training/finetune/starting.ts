/**
 * Where fine-tuning starts: the MobileNetV2 TFLite weights, optionally another HematoVision model's backbone
 * (`--from`), and a head fitted on the starting backbone's features (or, resumed, the checkpoint's).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError } from '../../errors.js';
import {
  buildBackboneModel,
  loadTfliteBackbone,
  mobileNetV2Spec,
  withBackboneOf,
} from '../../model/backbone.js';
import { FeatureExtractor } from '../../model/feature-extractor.js';
import { readMetadata } from '../../model/onnx/graph-builder.js';
import type { NetSpec } from '../../model/net/spec.js';
import type { TfliteGraph } from '../../model/tflite/read.js';
import { cropAt } from '../batches.js';
import type { Dataset } from '../dataset.js';
import { computeFeatures } from '../feature-cache.js';
import { foldStandardisation, selectL2 } from '../head.js';
import type { Checkpoint, CheckpointHeader } from './checkpoint.js';
import type { FineTuneData } from './crops.js';
import type { FineTuneOptions, Settings } from './settings.js';

/**
 * ../shared beside the repository, where development and CI keep the MobileNetV2 weights: the default of
 * `train --fine-tune` and of a server's adaptations when no file is named.
 */
export const SHARED_TFLITE = resolve(
  fileURLToPath(import.meta.url),
  '../../../../../shared/weights/mobilenet_v2_1.0_224_quant.tflite',
);

/** The MobileNetV2 TFLite file the backbone comes from, read and checked. */
export function readTflite(path: string): { bytes: Buffer; graph: TfliteGraph } {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new ModelError(
      `Fine-tuning needs the MobileNetV2 TFLite weights, not found at ${file}. Pass --tflite with ` +
        'mobilenet_v2_1.0_224_quant.tflite (the file the backbone was imported from).',
      'model_not_found',
    );
  }
  const bytes = readFileSync(file);
  return { bytes, graph: loadTfliteBackbone(bytes) };
}

/** The model a run starts from instead of ImageNet's weights (`--from`). */
export interface StartingModel {
  layers: NetSpec['layers'];
  name: string;
  sha256: string;
}

/**
 * The backbone layers of the model `train --from` names, read once and checked against this TFLite file
 * before any data is read (a wrong file or another backbone fails fast).
 */
export function startingModel(path: string, tfl: TfliteGraph): StartingModel {
  const file = resolve(path);
  if (!existsSync(file))
    throw new ModelError(`The model to start from was not found at ${file}.`, 'model_not_found');
  const bytes = readFileSync(file);
  let layers: NetSpec['layers'];
  try {
    layers = withBackboneOf(mobileNetV2Spec(tfl, { classes: 0 }), bytes, tfl.sha256).layers;
  } catch (e) {
    if (e instanceof ModelError) throw new ModelError(`--from ${file}: ${e.message}`, e.code);
    throw e;
  }
  const name = readMetadata(bytes)['hematovision.name'] ?? basename(file);
  return { layers, name, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * The network the epochs start from, with the starting head's l2 choice: a fresh run fits the head here; a
 * resumed run takes the architecture here and its weights from the checkpoint.
 */
export async function startingNetwork(x: {
  o: FineTuneOptions;
  s: Settings;
  ds: Dataset;
  tflite: { bytes: Uint8Array; graph: TfliteGraph };
  /** The `--from` model, if any. */
  start: StartingModel | null;
  data: FineTuneData;
  /** The checkpoint a resumed run continues from, and its folder. */
  resumed: { ckpt: Checkpoint; dir: string } | null;
  stage: (s: string) => void;
}): Promise<{ spec: NetSpec; initial: CheckpointHeader['initial'] }> {
  const { ds, tflite, start, resumed, stage } = x;
  const k = ds.classes.length;
  const tfl = tflite.graph;
  if (resumed) {
    stage(`Resuming after epoch ${resumed.ckpt.header.epoch} from ${resumed.dir}`);
    const pretrained = mobileNetV2Spec(tfl, { classes: k });
    return {
      spec: start ? { ...pretrained, layers: start.layers } : pretrained,
      initial: resumed.ckpt.header.initial,
    };
  }
  stage(
    `Starting head: ${start ? `${start.name}'s` : 'frozen-backbone'} features of the unaugmented crops, l2 chosen on validation`,
  );
  const init = await startingHead(x.o, x.s, ds, tflite.bytes, x.data);
  const head = mobileNetV2Spec(tfl, { head: { ...foldStandardisation(init.head), classes: k } });
  return {
    spec: start ? { ...head, layers: start.layers } : head,
    initial: { l2: init.l2, l2Table: init.table },
  };
}

/**
 * The starting head: fitted on view-0 features of the training split from the starting backbone (ImageNet's
 * or `from`'s; shared feature cache, computed from the prepared crops on a miss), l2 by validation.
 */
async function startingHead(
  o: FineTuneOptions,
  s: Settings,
  ds: Dataset,
  tflite: Uint8Array,
  data: FineTuneData,
) {
  const { prep, store, trainItems, valItems, itemWeights } = data;
  // The starting backbone as a file, so computeFeatures and its cache (keyed on the backbone id) serve.
  const dir = mkdtempSync(join(tmpdir(), 'hematovision-backbone-'));
  let feats: Awaited<ReturnType<typeof computeFeatures>>;
  try {
    const path = o.from ? resolve(o.from) : join(dir, 'backbone.onnx');
    if (!o.from) writeFileSync(path, buildBackboneModel(tflite));
    const extractor = await FeatureExtractor.load(path);
    try {
      feats = await computeFeatures(ds.items, extractor, prep, {
        views: 1,
        seed: o.seed,
        cacheDir: o.cacheDir,
        onProgress: o.onFeatures,
        crops: (i) => (data.usable[i] ? cropAt(store, i) : null),
        keys: data.keys,
      });
    } finally {
      await extractor.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rowOf = new Int32Array(ds.items.length).fill(-1);
  for (let r = 0; r < feats.n; r++) rowOf[feats.item[r]] = r;
  const pick = (items: number[]) => {
    const rows = items.filter((i) => rowOf[i] >= 0);
    const x = new Float32Array(rows.length * feats.d);
    rows.forEach((i, j) =>
      x.set(feats.x.subarray(rowOf[i] * feats.d, (rowOf[i] + 1) * feats.d), j * feats.d),
    );
    return {
      x,
      n: rows.length,
      y: Int32Array.from(rows, (i) => ds.items[i].labelIndex),
      sampleWeights: Float32Array.from(rows, (i) => itemWeights[i]),
    };
  };
  return selectL2(pick(trainItems), pick(valItems), feats.d, ds.classes.length, { grid: s.l2Grid });
}
