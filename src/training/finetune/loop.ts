/**
 * The epoch loop: AdamW on the trainable blocks and the head over freshly augmented batches, validation and a
 * checkpoint after every epoch, early stopping on validation NLL. Batch order and augmentation are functions
 * of (seed, epoch), never of timing, so a resumed run continues exactly.
 */
import { HematoError } from '../../errors.js';
import { AUGMENT_PRESETS } from '../../imaging/augment.js';
import { HEAD_BLOCK, type NetSpec, type ParamInfo } from '../../model/net/spec.js';
import { argmax } from '../../model/softmax.js';
import { TrainingSession } from '../../model/training-graph/session.js';
import { augmentSeed, createBatchMaker, epochOrder, type BatchMaker } from '../batches.js';
import type { Dataset } from '../dataset.js';
import { AdamW, GradientAccumulator, parametersFrom, warmupCosine } from '../optimizer.js';
import {
  loadInto,
  optimizerState,
  writeCheckpoint,
  type Checkpoint,
  type CheckpointHeader,
  type EpochSummary,
  type LoopState,
  type RunConfig,
} from './checkpoint.js';
import type { FineTuneData } from './crops.js';
import { interrupted } from './resume.js';
import type { FineTuneOptions, Settings } from './settings.js';
import { scoreValidation, Validator } from './validator.js';

export interface LoopInputs {
  o: FineTuneOptions;
  s: Settings;
  /** The starting network; its trainable weights are trained in place and end as the kept epoch's. */
  spec: NetSpec;
  ds: Dataset;
  data: FineTuneData;
  /** The checkpoint to continue from, or null for a fresh run. */
  ckpt: Checkpoint | null;
  ckptPaths: { dir: string; file: string };
  config: RunConfig;
  initial: CheckpointHeader['initial'];
  stage: (s: string) => void;
}

export interface LoopResult {
  state: LoopState;
  /** Whose weights `spec` now holds: the best epoch, or the last with keep 'last'. */
  keptEpoch: number;
  /** Validation logits of the kept weights. */
  valLogits: Float32Array;
  /** From the built training graph to the end of the last epoch. */
  seconds: number;
}

/** The optimizer and schedule of one run. */
interface Trainer {
  session: TrainingSession;
  trainable: ParamInfo[];
  headParams: ParamInfo[];
  bodyParams: ParamInfo[];
  optHead: AdamW;
  optBody: AdamW;
  maker: BatchMaker;
  accumulator: GradientAccumulator | null;
  batchesPerEpoch: number;
  schedule: (step: number) => number;
  labels: Int32Array;
}

/** Trains until the last epoch or early stopping, then loads the kept epoch's weights into `spec`. */
export async function trainEpochs(x: LoopInputs): Promise<LoopResult> {
  const { s, spec, data, stage } = x;
  stage(`Building the training graph (blocks ≥ ${s.trainFromBlock} and the head)`);
  const t = await createTrainer(x);
  let validator: Validator | null = null;
  let state: LoopState;
  let best: Map<string, Float32Array>;
  const tt = performance.now();
  let trained = false;
  try {
    validator = await Validator.create(spec, t.trainable, data.store, data.valItems, s.threads);
    if (x.ckpt) ({ state, best } = restore(x.ckpt, t));
    else ({ state, best } = await startingPoint(x, t, validator));
    while (state.epoch < s.epochs && !state.stoppedEarly) {
      best = await runEpoch(x, t, validator, state, best);
      if (x.o.signal?.aborted && state.epoch < s.epochs && !state.stoppedEarly)
        throw interrupted(state.epoch, s.epochs, x.ckptPaths.dir);
    }
    trained = true;
  } finally {
    await t.maker.close();
    await t.session.close();
    if (!trained) await validator?.close();
  }
  const seconds = (performance.now() - tt) / 1000;

  const keptEpoch = s.keep === 'last' ? state.epoch : state.bestEpoch;
  stage(`Calibrating the weights of epoch ${keptEpoch} on validation`);
  if (s.keep === 'best') for (const p of t.trainable) p.data.set(best.get(p.name)!);
  const valLogits = await validator!.logits();
  await validator!.close();
  return { state, keptEpoch, valLogits, seconds };
}

async function createTrainer(x: LoopInputs): Promise<Trainer> {
  const { s, spec, data } = x;
  const session = await TrainingSession.create(spec, {
    trainFromBlock: s.trainFromBlock,
    frozenPrefix: 'separate',
    batchSize: s.batchSize,
    labelSmoothing: s.labelSmoothing,
    threads: s.threads,
  });
  const trainable = session.trainable;
  const headParams = trainable.filter((p) => p.block === HEAD_BLOCK);
  const bodyParams = trainable.filter((p) => p.block !== HEAD_BLOCK);
  const optHead = new AdamW(parametersFrom(headParams), { weightDecay: s.weightDecay });
  const optBody = new AdamW(parametersFrom(bodyParams), { weightDecay: s.weightDecay });
  const maker = createBatchMaker(data.store, { workers: s.workers, augment: AUGMENT_PRESETS[s.augment] });

  // A step is one update: `accumulate` batches (the last of an epoch may have fewer).
  const batchesPerEpoch = Math.ceil(data.trainItems.length / s.batchSize);
  const stepsPerEpoch = Math.ceil(batchesPerEpoch / s.accumulate);
  const totalSteps = s.epochs * stepsPerEpoch;
  const accumulator = s.accumulate > 1 ? new GradientAccumulator() : null;
  const warmupSteps = Math.min(Math.round(s.warmupEpochs * stepsPerEpoch), Math.floor(totalSteps / 2));
  const schedule = (step: number) => warmupCosine(step, { peak: s.lr, warmupSteps, totalSteps });
  const labels = Int32Array.from(x.ds.items, (it) => it.labelIndex);
  return {
    session,
    trainable,
    headParams,
    bodyParams,
    optHead,
    optBody,
    maker,
    accumulator,
    batchesPerEpoch,
    schedule,
    labels,
  };
}

const scoreOf = (x: LoopInputs, logits: Float32Array) =>
  scoreValidation(logits, x.data.valItems, x.ds, x.data.itemWeights, x.ds.classes.length);

function snapshot(params: ParamInfo[]): Map<string, Float32Array> {
  return new Map(params.map((p) => [p.name, p.data.slice()]));
}

/** Weights, optimizer state and loop state as the checkpoint left them. */
function restore(ckpt: Checkpoint, t: Trainer): { state: LoopState; best: Map<string, Float32Array> } {
  loadInto(t.trainable, ckpt, 'w');
  t.optHead.loadState(optimizerState(ckpt, 'head', t.headParams));
  t.optBody.loadState(optimizerState(ckpt, 'body', t.bodyParams));
  const best = new Map(t.trainable.map((p) => [p.name, ckpt.tensors.get(`best/${p.name}`)!.slice()]));
  const h = ckpt.header;
  const state: LoopState = {
    epoch: h.epoch,
    step: h.step,
    bestEpoch: h.bestEpoch,
    bestNll: h.bestNll,
    bad: h.bad,
    history: h.history,
    stoppedEarly: h.stoppedEarly,
  };
  return { state, best };
}

/** Epoch 0: the starting weights, validated. */
async function startingPoint(
  x: LoopInputs,
  t: Trainer,
  validator: Validator,
): Promise<{ state: LoopState; best: Map<string, Float32Array> }> {
  x.stage('Validating the starting point');
  const t0 = performance.now();
  const val = scoreOf(x, await validator.logits());
  const e0: EpochSummary = {
    epoch: 0,
    trainLoss: null,
    trainAccuracy: null,
    val,
    lr: null,
    seconds: (performance.now() - t0) / 1000,
    best: true,
  };
  const best = snapshot(t.trainable);
  const state: LoopState = {
    epoch: 0,
    step: 0,
    bestEpoch: 0,
    bestNll: val.nll,
    bad: 0,
    history: [e0],
    stoppedEarly: false,
  };
  x.o.onEpoch?.(e0);
  return { state, best };
}

/**
 * One epoch: every training crop once, augmented afresh; then validation, the early-stopping bookkeeping in
 * `state` and the checkpoint. Returns the best weights so far.
 */
async function runEpoch(
  x: LoopInputs,
  t: Trainer,
  validator: Validator,
  state: LoopState,
  bestSoFar: Map<string, Float32Array>,
): Promise<Map<string, Float32Array>> {
  const { o, s, data } = x;
  const k = x.ds.classes.length;
  const { labels, accumulator, schedule } = t;
  const epoch = state.epoch + 1;
  const te = performance.now();
  x.stage(`Epoch ${epoch} of ${s.epochs}`);
  const order = epochOrder(data.trainItems, o.seed, epoch);
  const batches = Array.from({ length: t.batchesPerEpoch }, (_, b) =>
    order.slice(b * s.batchSize, (b + 1) * s.batchSize),
  );
  const request = (b: number) =>
    t.maker.make(
      batches[b],
      batches[b].map((i) => augmentSeed(o.seed, epoch, i)),
    );
  let lossSum = 0;
  let weightSum = 0;
  let correct = 0;
  let seen = 0;
  let lr = schedule(state.step);
  let pending = request(0);
  for (let b = 0; b < batches.length; b++) {
    const images = await pending;
    // The next batch is augmented while this one trains.
    if (b + 1 < batches.length) pending = request(b + 1);
    if (o.signal?.aborted) {
      await pending.catch(() => {});
      throw interrupted(state.epoch, s.epochs, x.ckptPaths.dir);
    }
    const items = batches[b];
    const n = items.length;
    const targets = new Float32Array(n * k);
    const sampleWeights = new Float32Array(n);
    items.forEach((i, j) => {
      targets[j * k + labels[i]] = 1;
      sampleWeights[j] = data.itemWeights[i];
    });
    const r = await t.session.step({ images, n, targets, sampleWeights });
    if (!Number.isFinite(r.loss)) {
      throw new HematoError(
        `The training loss became ${r.loss} at epoch ${epoch}, step ${b + 1}: lower --lr.`,
        'diverged',
        500,
      );
    }
    accumulator?.add(r.grads, r.weightSum);
    // Each epoch ends on an update, so a checkpoint never holds half-added gradients.
    if (!accumulator || accumulator.count === s.accumulate || b + 1 === batches.length) {
      const grads = accumulator ? accumulator.mean() : r.grads;
      accumulator?.reset();
      lr = schedule(state.step);
      t.optBody.step(grads, lr);
      t.optHead.step(grads, (lr * s.headLr) / s.lr);
      state.step++;
    }
    lossSum += r.loss * r.weightSum;
    weightSum += r.weightSum;
    for (let j = 0; j < n; j++) if (argmax(r.logits, j, k) === labels[items[j]]) correct++;
    seen += n;
    o.onStep?.({
      epoch,
      epochs: s.epochs,
      step: b + 1,
      steps: batches.length,
      loss: lossSum / weightSum,
      accuracy: correct / seen,
      lr,
      imagesPerSecond: seen / ((performance.now() - te) / 1000),
    });
  }

  const val = scoreOf(x, await validator.logits());
  const improved = val.nll < state.bestNll;
  let best = bestSoFar;
  if (improved) {
    state.bestNll = val.nll;
    state.bestEpoch = epoch;
    state.bad = 0;
    best = snapshot(t.trainable);
  } else {
    state.bad++;
  }
  state.epoch = epoch;
  state.stoppedEarly = s.keep === 'best' && state.bad >= s.patience && epoch < s.epochs;
  const summary: EpochSummary = {
    epoch,
    trainLoss: lossSum / weightSum,
    trainAccuracy: correct / seen,
    val,
    lr,
    seconds: (performance.now() - te) / 1000,
    best: improved,
  };
  state.history.push(summary);
  writeCheckpoint(x.ckptPaths.file, {
    config: x.config,
    initial: x.initial,
    ...state,
    finished: false,
    optimizer: { head: t.optHead.saveState(), body: t.optBody.saveState() },
    weights: t.trainable,
    best,
  });
  o.onEpoch?.(summary);
  return best;
}
