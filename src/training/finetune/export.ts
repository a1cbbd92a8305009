/** The end of fine-tuning: the calibrated one-file classifier (backbone + head + temperature) and its card. */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AUGMENT_PRESETS, describeAugment, type AugmentPreset } from '../../imaging/augment.js';
import { BACKBONE_ATTRIBUTION, backboneMetadata, IMPORTER_VERSION } from '../../model/backbone.js';
import { buildClassifierModel } from '../../model/classifier-graph.js';
import type { Preprocessing } from '../../model/inputs.js';
import { buildInferenceGraph } from '../../model/net/forward.js';
import { inferShapes, type NetSpec } from '../../model/net/spec.js';
import type { FineTuningRecord, ModelCard, TestTimeAugmentation } from '../../model/types.js';
import { cropAt } from '../batches.js';
import type { Dataset } from '../dataset.js';
import { writeAtomic } from '../files.js';
import type { CalibratedHeldOut } from '../held-out.js';
import { cardHeader, INTENDED_USE, MODEL_LICENSE, trainingRecord } from '../model-card.js';
import { calibrateTestTimeViews } from '../test-time.js';
import type { CheckpointHeader, LoopState } from './checkpoint.js';
import type { FineTuneData } from './crops.js';
import { LAST_BLOCK, type FineTuneOptions, type Settings } from './settings.js';

/** What the model card says of an augmentation preset. */
export const augmentationNote = (preset: AugmentPreset): string =>
  `augment() preset '${preset}' (${describeAugment(AUGMENT_PRESETS[preset])}), drawn afresh every epoch`;

export interface ExportInputs {
  o: FineTuneOptions;
  s: Settings;
  spec: NetSpec;
  tfliteSha256: string;
  startedFrom?: { name: string; sha256: string };
  ds: Dataset;
  prep: Preprocessing;
  state: LoopState;
  keptEpoch: number;
  initial: CheckpointHeader['initial'];
  /** The kept weights calibrated on validation (temperature, review threshold, the card's metrics). */
  held: CalibratedHeldOut;
  outDir: string;
  /** Calibrates the exported network for test-time views (none: one view only). */
  testTime?: (onnx: Uint8Array) => Promise<TestTimeAugmentation>;
  onWrite: () => void;
}

/** The one-file classifier (fine-tuned backbone + head + calibration) and its card, written to outDir. */
export async function writeFineTuned(
  x: ExportInputs,
): Promise<{ card: ModelCard; modelPath: string; cardPath: string }> {
  const net = buildFineTuned(x);
  const testTimeAugmentation = await x.testTime?.(net.onnx);
  x.onWrite();
  mkdirSync(x.outDir, { recursive: true });
  const modelPath = join(x.outDir, 'model.onnx');
  const cardPath = join(x.outDir, 'model.json');
  const card = fineTunedCard(x, net, testTimeAugmentation);
  // The model first, then the card: a card never points at a half-written model.
  writeAtomic(modelPath, net.onnx);
  writeAtomic(cardPath, Buffer.from(JSON.stringify(card, null, 2) + '\n'));
  return { card, modelPath, cardPath };
}

/** The exported network and the identity of its backbone's weights. */
interface FineTunedNetwork {
  onnx: Uint8Array;
  featureDim: number;
  weightsSha256: string;
  backboneId: string;
  /** Whether the backbone's weights differ from the pretrained ones (fine-tuned, or `--from` another model). */
  changed: boolean;
}

function buildFineTuned(x: ExportInputs): FineTunedNetwork {
  const { o, s, spec, ds, tfliteSha256 } = x;
  const k = ds.classes.length;
  const shapes = inferShapes(spec);
  const dims = spec.features.map((f) => shapes.get(f)![0]);
  const d = dims.reduce((a, b) => a + b, 0);
  const weightsSha256 = backboneWeightsSha256(spec);
  // Epoch 0 kept means the starting weights: from ImageNet, their features are the pretrained backbone's.
  const changed = x.keptEpoch > 0 || x.startedFrom !== undefined;
  const pretrained = backboneMetadata(tfliteSha256, spec.features, dims);
  const backboneId = changed
    ? `${tfliteSha256.slice(0, 16)}-v${IMPORTER_VERSION}-ft${weightsSha256.slice(0, 16)}-${spec.features.join('+')}`
    : pretrained['hematovision.backbone_id'];
  const backbone = buildInferenceGraph(spec, {
    head: false,
    doc: changed
      ? `${BACKBONE_ATTRIBUTION} Blocks ≥ ${s.trainFromBlock} fine-tuned by HematoVision.`
      : BACKBONE_ATTRIBUTION,
    metadata: changed
      ? {
          ...pretrained,
          // A new id: feature caches keyed on it never mix features of different weights.
          'hematovision.backbone_id': backboneId,
          'hematovision.finetuned_from_block': String(s.trainFromBlock),
          'hematovision.finetuned_weights_sha256': weightsSha256,
        }
      : pretrained,
  });
  const onnx = buildClassifierModel(
    backbone,
    { weight: spec.head.weight, bias: spec.head.bias, k, d },
    { temperature: x.held.temperature, classes: ds.classes, metadata: { 'hematovision.name': o.name } },
  );
  return { onnx, featureDim: d, weightsSha256, backboneId, changed };
}

function fineTunedCard(
  x: ExportInputs,
  net: FineTunedNetwork,
  testTimeAugmentation: TestTimeAugmentation | undefined,
): ModelCard {
  const { o, s, spec, ds, prep, state, initial, held } = x;
  const { weightsSha256, backboneId, changed } = net;
  const epochsRun = state.epoch;
  const record: FineTuningRecord = {
    fromBlock: s.trainFromBlock,
    epochs: epochsRun,
    maxEpochs: s.epochs,
    bestEpoch: state.bestEpoch,
    keep: s.keep,
    keptEpoch: x.keptEpoch,
    steps: state.step,
    batchSize: s.batchSize,
    ...(s.accumulate > 1 ? { accumulate: s.accumulate } : {}),
    lr: s.lr,
    headLr: s.headLr,
    warmupEpochs: s.warmupEpochs,
    weightDecay: s.weightDecay,
    labelSmoothing: s.labelSmoothing,
    patience: s.keep === 'best' ? s.patience : null,
    augmentation: augmentationNote(s.augment),
    initialHead: `softmax regression (L-BFGS) on frozen features of the unaugmented training crops, l2 ${initial.l2} chosen on validation`,
    ...(x.startedFrom ? { startedFrom: x.startedFrom } : {}),
  };
  return {
    ...cardHeader(o.name, ds.classes, net.onnx),
    backbone: {
      name:
        'MobileNetV2 1.0 224 (ImageNet), float32 from the uint8 TFLite model, BatchNorm folded; ' +
        (x.startedFrom ? `started from ${x.startedFrom.name}'s weights; ` : '') +
        (x.keptEpoch > 0
          ? `blocks ${s.trainFromBlock}–${LAST_BLOCK} fine-tuned on the training data`
          : `fine-tuning blocks ${s.trainFromBlock}–${LAST_BLOCK} did not beat the ${x.startedFrom ? 'starting' : 'pretrained'} weights on validation, which are kept`),
      sha256: x.tfliteSha256,
      featureBlocks: spec.features,
      featureDim: net.featureDim,
      attribution: BACKBONE_ATTRIBUTION,
      ...(changed ? { fineTuned: { fromBlock: s.trainFromBlock, weightsSha256, backboneId } } : {}),
    },
    preprocessing: prep,
    temperature: held.temperature,
    reviewThreshold: held.reviewThreshold,
    head: {
      kind: `linear head on pooled multi-block features, fine-tuned with blocks ${s.trainFromBlock}–${LAST_BLOCK}`,
      l2: initial.l2,
      optimizer:
        `AdamW (backbone lr ${s.lr}, head lr ${s.headLr}, weight decay ${s.weightDecay}, none on biases), ` +
        `${s.warmupEpochs} warm-up epoch(s) then cosine, batch ${s.batchSize}` +
        (s.accumulate > 1 ? ` × ${s.accumulate} accumulated; ` : '; ') +
        (s.keep === 'best'
          ? `best of ${epochsRun} epochs by validation NLL (epoch ${state.bestEpoch})`
          : `the last of ${epochsRun} epochs`),
      iterations: state.step,
      l2Grid: s.l2Grid,
      fineTuning: record,
    },
    // Every epoch draws a new augmented view of each training image.
    training: trainingRecord(ds, o, epochsRun),
    validation: held.record,
    ...(testTimeAugmentation ? { testTimeAugmentation } : {}),
    license: MODEL_LICENSE,
    intendedUse: INTENDED_USE,
  };
}

/**
 * Calibrates an exported network for its 8 test-time views on the validation crops (the card's
 * testTimeAugmentation), or undefined when the options turn test-time views off.
 */
export function testTimeCalibrator(
  o: FineTuneOptions,
  s: Settings,
  ds: Dataset,
  data: FineTuneData,
  stage: (s: string) => void,
): ((onnx: Uint8Array) => Promise<TestTimeAugmentation>) | undefined {
  if (o.testTimeViews === false) return undefined;
  return async (onnx) => {
    stage('Calibrating the 8 test-time views (flips and turns) on validation');
    const views = await calibrateTestTimeViews(onnx, data.valItems, (i) => cropAt(data.store, i), ds, {
      reviewTargetAccuracy: o.reviewTargetAccuracy,
      threads: s.threads,
      onProgress: o.onViews,
    });
    return views.card;
  };
}

/** sha256 of every backbone weight (not the head): the identity of the features the model computes. */
export function backboneWeightsSha256(spec: NetSpec): string {
  const h = createHash('sha256');
  for (const l of spec.layers) {
    if (l.kind !== 'conv') continue;
    h.update(new Uint8Array(l.weight.buffer, l.weight.byteOffset, l.weight.byteLength));
    h.update(new Uint8Array(l.bias.buffer, l.bias.byteOffset, l.bias.byteLength));
  }
  return h.digest('hex');
}
