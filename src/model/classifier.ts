import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HematoError, ModelError } from '../errors.js';
import { OUTPUTS } from './classifier-graph.js';
import { OnnxSession, OnnxThreadSession, type InferenceSession } from './onnx/runtime.js';
import { predictionOf } from './predictions.js';
import { BulkHold } from './bulk-hold.js';
import { defaultPriority, MAX_RUN_ROWS, RunQueue, type Priority, type Slice } from './run-queue.js';
import { softmaxRows } from './softmax.js';
import type { ModelCard, Prediction } from './types.js';
import { meanMapsOverViews, meanOverViews, writeViewRows } from './views.js';

/** The bundled default model, shipped in the repository's models/ folder. */
export const DEFAULT_MODEL_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/model.onnx');

/**
 * The model file a `--model` argument (or MODEL) names: a file as is; a folder, its model.onnx, or its
 * model.int8.onnx when that is the only model in it (`export --int8 --out` writes one).
 */
export function resolveModelPath(modelPath: string): string {
  const path = resolve(modelPath);
  if (!(existsSync(path) && statSync(path).isDirectory())) return path;
  const float = join(path, 'model.onnx');
  const int8 = join(path, 'model.int8.onnx');
  return !existsSync(float) && existsSync(int8) ? int8 : float;
}

/**
 * The model a command reads to make another or rewrites in place (familiarize, adapt): a model folder or its
 * model.onnx, with its card beside it. Always the float model: a folder's int8 copy is made from it, never
 * the other way (unlike resolveModelPath, which takes the int8 copy where the float one is missing).
 */
export function floatModelWithCard(model: string): { modelPath: string; cardPath: string; card: ModelCard } {
  let modelPath = resolve(model);
  if (existsSync(modelPath) && statSync(modelPath).isDirectory()) modelPath = join(modelPath, 'model.onnx');
  const cardPath = cardPathFor(modelPath);
  if (!existsSync(modelPath) || !existsSync(cardPath))
    throw new ModelError(`No model.onnx with its model.json at ${model}.`, 'model_not_found');
  return { modelPath, cardPath, card: JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard };
}

/** model.json beside model.onnx (or `<name>.json` beside `<name>.onnx`). */
export function cardPathFor(modelPath: string): string {
  const sibling = modelPath.replace(/\.onnx$/i, '.json');
  // A name not ending in .onnx has no sibling: never read the model itself as its card.
  return sibling !== modelPath && existsSync(sibling) ? sibling : join(dirname(modelPath), 'model.json');
}

/** Class activation maps are 7×7 (224 / 32). */
const CAM_SIDE = 7;

export interface RunOptions {
  /** Also return the class activation maps. */
  cam?: boolean;
  /**
   * Test-time augmentation: average the logits of the crop's 8 flips and turns, calibrated by the card's
   * `testTimeAugmentation` (more accurate, 8× the network time). Refused for a model without that block.
   */
  tta?: boolean;
  /**
   * Interactive calls run before bulk ones (run-queue.ts). Default: bulk for test-time augmentation or more
   * than a few rows; a server says so per request (all chunks of a 50-image upload are bulk).
   */
  priority?: Priority;
}

interface Pending {
  /** n images; with several views, each image's rows are built when a turn runs them (views.ts) */
  input: Float32Array;
  n: number;
  views: number;
  priority: Priority;
  withCam: boolean;
  resolve: (out: BatchOutput) => void;
  reject: (e: unknown) => void;
  /** Rows run so far (a call may take several turns). */
  done: number;
  /** Its outputs, filled turn by turn. */
  out?: RunRows;
  failed?: boolean;
}

export interface BatchOutput {
  /** n×k calibrated probabilities */
  probabilities: Float32Array;
  /** n×k×7×7 class activation maps, when asked for */
  cam?: Float32Array;
  /** Views averaged per image (1, or 8 with test-time augmentation). */
  views: number;
  /** Results below this confidence are flagged for review (calibrated for these views). */
  reviewThreshold: number;
  /**
   * Per image: distance of its features to the nearest class (`cell`) and of its early-block features to the
   * nearest training lab (`image`), raw (the card's familiarity thresholds divide them); views averaged.
   * Absent for a model without a familiarity reference.
   */
  distances?: { cell: Float32Array; image: Float32Array };
}

/** The card's review threshold for one view, or for test-time augmentation (calibrated separately). */
export function reviewThresholdFor(card: ModelCard, tta = false): number {
  return (tta ? card.testTimeAugmentation?.reviewThreshold : undefined) ?? card.reviewThreshold;
}

interface RunRows {
  scores: Float32Array;
  cam?: Float32Array;
  distances?: { cell: Float32Array; image: Float32Array };
}

export interface LoadOptions {
  /**
   * Run the network in a worker thread, so the caller's event loop stays free while it runs (a server keeps
   * answering other clients). Costs a thread start and a copy of each input batch. Bulk calls then run in a
   * second session of their own, on a low-priority thread, started at the first bulk call.
   */
  worker?: boolean;
  /** The bulk session closes after this long without bulk calls (default BULK_SESSION_IDLE_MS). */
  bulkIdleMs?: number;
}

/**
 * A second session holds about 130 MB more (its thread, ONNX Runtime's copy of the model and buffers): given
 * back a minute after the last bulk call, started again by the next one (0.5–0.9 s under load).
 */
export const BULK_SESSION_IDLE_MS = 60_000;

/**
 * One runner of the queue: the calls of its priority (all, without `only`) through its session, one turn at a
 * time.
 */
interface Lane {
  only?: Priority;
  session: () => Promise<InferenceSession>;
  busy: boolean;
}

/** A trained model file with its card, verified against the card's sha256 before it runs. */
export class Classifier {
  private constructor(
    readonly card: ModelCard,
    readonly path: string,
    private readonly session: InferenceSession,
    private readonly hasDistances: boolean,
    startBulkSession?: () => Promise<InferenceSession>,
    private readonly bulkIdleMs = BULK_SESSION_IDLE_MS,
  ) {
    this.hold.onIdle(() => this.kick());
    const main = () => Promise.resolve(session);
    if (!startBulkSession) {
      this.lanes = [{ session: main, busy: false }];
      return;
    }
    // Bulk rows on a session of their own at low priority, beside the interactive one (issue 15: on 2 cores
    // a test-time-augmentation turn held a core while another client's photo was served on the other; now the
    // photo's run starts at once and the kernel gives it the cores first). Started at the first bulk call, so
    // a server that never sees one does not hold the model twice; a failed start fails that turn's calls and
    // the next turn tries again.
    const bulk = () => {
      this.bulkSession ??= startBulkSession().catch((e: unknown) => {
        this.bulkSession = undefined;
        throw e;
      });
      return this.bulkSession;
    };
    this.lanes = [
      { only: 'interactive', session: main, busy: false },
      { only: 'bulk', session: bulk, busy: false },
    ];
  }

  private readonly lanes: Lane[];
  private bulkSession?: Promise<InferenceSession>;
  private bulkIdleTimer?: NodeJS.Timeout;

  /** After the bulk lane ran: its session closes if no bulk turn runs for bulkIdleMs. */
  private releaseBulkWhenIdle(lane: Lane): void {
    clearTimeout(this.bulkIdleTimer);
    this.bulkIdleTimer = setTimeout(() => {
      // Still in use, or held calls about to use it: the lane's next end starts the wait again.
      if (lane.busy || this.queue.waiting('bulk') || !this.bulkSession) return;
      const session = this.bulkSession;
      this.bulkSession = undefined;
      void session.then((s) => s.close()).catch(() => undefined);
    }, this.bulkIdleMs);
    this.bulkIdleTimer.unref();
  }

  /**
   * Interactive work in flight (an analyzer call of priority 'interactive', from decoding to answer) holds
   * back bulk turns here and bulk decoding in the preparation pool (bulk-hold.ts).
   */
  readonly hold = new BulkHold();

  static async load(modelPath: string = DEFAULT_MODEL_PATH, options: LoadOptions = {}): Promise<Classifier> {
    const path = resolveModelPath(modelPath);
    if (!existsSync(path)) {
      throw new ModelError(
        `Model file not found: ${path}. Pass --model with a model.onnx written by 'hematovision train'.`,
        'model_not_found',
      );
    }
    const cardPath = cardPathFor(path);
    if (!existsSync(cardPath)) {
      throw new ModelError(
        `Model card not found: ${cardPath} (model.json belongs beside model.onnx).`,
        'card_not_found',
      );
    }
    let card: ModelCard;
    try {
      card = JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard;
    } catch (e) {
      throw new ModelError(`Model card ${cardPath} is not valid JSON: ${(e as Error).message}`, 'bad_card');
    }
    if (!Array.isArray(card.classes) || typeof card.modelSha256 !== 'string' || !card.preprocessing) {
      throw new ModelError(`Model card ${cardPath} lacks classes, modelSha256 or preprocessing.`, 'bad_card');
    }
    const bytes = readFileSync(path);
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== card.modelSha256) {
      throw new ModelError(
        `Model file ${path} does not match its card (sha256 ${sha.slice(0, 12)}… ≠ ${card.modelSha256.slice(0, 12)}…): ` +
          'it was changed or replaced. Refusing to run it.',
        'sha256_mismatch',
      );
    }
    // No spinning: between runs the same two cores decode, locate and serve HTTP; spinning ORT threads
    // would steal them (measured: more requests/s and a lower p99 under 16 concurrent clients).
    const session = await (options.worker ? OnnxThreadSession : OnnxSession).create(bytes, 2, {
      spin: false,
    });
    const startBulkSession = options.worker
      ? () => OnnxThreadSession.create(bytes, 2, { spin: false, lowPriority: true })
      : undefined;
    for (const out of [OUTPUTS.probabilities, OUTPUTS.cam]) {
      if (!session.outputNames.includes(out)) {
        await session.close();
        throw new ModelError(`${path} is not a HematoVision classifier (no '${out}' output).`, 'bad_model');
      }
    }
    const distances = [OUTPUTS.cellDistance, OUTPUTS.imageDistance].filter((o) =>
      session.outputNames.includes(o),
    );
    if (card.familiarity && distances.length < 2) {
      await session.close();
      throw new ModelError(
        `Model card ${cardPath} describes familiarity checks that ${path} does not compute.`,
        'bad_model',
      );
    }
    return new Classifier(card, path, session, distances.length === 2, startBulkSession, options.bulkIdleMs);
  }

  /** Whether the model file computes familiarity distances and its card holds their thresholds. */
  get familiar(): boolean {
    return this.hasDistances && this.card.familiarity !== undefined;
  }

  get classes(): string[] {
    return this.card.classes;
  }

  get inputSize(): number {
    return this.card.preprocessing.inputSize;
  }

  /** Whether the card is calibrated for test-time augmentation (`tta`). */
  get hasTta(): boolean {
    return this.card.testTimeAugmentation !== undefined;
  }

  /** Below this confidence a result is flagged for review: each way of running has its own calibration. */
  reviewThreshold(tta = false): number {
    return reviewThresholdFor(this.card, tta);
  }

  /**
   * Runs `n` preprocessed images (NCHW float32) through the model. Calls that arrive while the network is
   * busy are queued and then run together as one batch: concurrent requests share a run instead of
   * queueing one by one, and an idle server adds no wait.
   */
  run(input: Float32Array, n: number, options: RunOptions = {}): Promise<BatchOutput> {
    const tta = options.tta ? this.card.testTimeAugmentation : undefined;
    if (options.tta && !tta) {
      return Promise.reject(
        new HematoError(
          `Model ${this.card.name} ${this.card.version} is not calibrated for test-time augmentation ` +
            '(its card has no testTimeAugmentation; retrain it without --no-test-time-views).',
          'no_tta',
          400,
        ),
      );
    }
    const views = tta?.views ?? 1;
    return new Promise((resolve, reject) => {
      this.queue.push({
        input,
        n,
        views,
        priority: options.priority ?? defaultPriority(n, views),
        withCam: options.cam === true,
        resolve,
        reject,
        done: 0,
      });
      this.kick();
    });
  }

  private readonly queue = new RunQueue<Pending>();

  /**
   * Runs the queue in turns (run-queue.ts): interactive calls first, coalesced up to MAX_BATCH rows (or
   * MAX_RUN_ROWS for a call waiting alone); a bulk call (test-time augmentation, many images) gets small turns
   * when no interactive call waits (one lane), or beside them in its own lane. A call with rows left goes
   * behind the others of its priority.
   */
  private async drain(lane: Lane): Promise<void> {
    lane.busy = true;
    let ran = false;
    for (;;) {
      // Nothing to run for a call without rows: answered at once.
      for (const p of this.queue.takeEmpty()) {
        p.out = { scores: new Float32Array(0), cam: p.withCam ? new Float32Array(0) : undefined };
        this.finish(p);
      }
      const slices = this.queue.next(this.hold.mayStartBulk(), lane.only);
      if (slices.length === 0) {
        // Bulk calls held back: run them when the interactive work ends, or when held too long.
        if (lane.only !== 'interactive' && this.queue.waiting('bulk')) this.wakeLater();
        break;
      }
      if (slices[0].p.priority === 'bulk') this.hold.bulkStarted();
      ran = true;
      const rows = slices.reduce((a, x) => a + x.count, 0);
      try {
        const out = await this.runRows(await lane.session(), slices, rows);
        this.collect(slices, out);
      } catch (e) {
        for (const { p } of slices) {
          p.failed = true;
          p.reject(e);
        }
      }
      for (const { p } of slices) if (!p.failed && p.done === p.n * p.views) this.finish(p);
      this.queue.served(slices);
    }
    lane.busy = false;
    if (ran && lane.only === 'bulk') this.releaseBulkWhenIdle(lane);
  }

  private wakeTimer?: NodeJS.Timeout;

  private wakeLater(): void {
    if (this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.kick();
    }, this.hold.waitMs());
  }

  private kick(): void {
    for (const lane of this.lanes) if (!lane.busy && this.queue.length > 0) void this.drain(lane);
  }

  /** Some calls' rows through the network, in runs of at most MAX_RUN_ROWS. */
  private async runRows(session: InferenceSession, slices: Slice<Pending>[], rows: number): Promise<RunRows> {
    const s = this.inputSize;
    const k = this.classes.length;
    const one = 3 * s * s;
    const single =
      slices.length === 1 && slices[0].p.views === 1 && slices[0].start === 0 && slices[0].count === rows;
    const input = single ? slices[0].p.input : new Float32Array(rows * one);
    if (!single) {
      let off = 0;
      for (const { p, start, count } of slices) {
        if (p.views > 1) writeViewRows(p.input, 3, s, p.views, start, count, input, off);
        else input.set(p.input.subarray(start * one, (start + count) * one), off * one);
        off += count;
      }
    }
    // One view: the graph's calibrated probabilities. Several: their logits, averaged and calibrated after.
    const name = slices[0].p.views > 1 ? OUTPUTS.logits : OUTPUTS.probabilities;
    const outputs: string[] = [name];
    const withCam = slices.some((x) => x.p.withCam);
    if (withCam) outputs.push(OUTPUTS.cam);
    if (this.familiar) outputs.push(OUTPUTS.cellDistance, OUTPUTS.imageDistance);
    const camSize = k * CAM_SIDE * CAM_SIDE;
    const scores = new Float32Array(rows * k);
    const cam = withCam ? new Float32Array(rows * camSize) : undefined;
    const distances = this.familiar
      ? { cell: new Float32Array(rows), image: new Float32Array(rows) }
      : undefined;
    for (let start = 0; start < rows; start += MAX_RUN_ROWS) {
      const m = Math.min(MAX_RUN_ROWS, rows - start);
      const part = input.subarray(start * one, (start + m) * one);
      const r = await session.run({ input: { data: part, dims: [m, 3, s, s] } }, outputs);
      scores.set(r[name].data, start * k);
      cam?.set(r[OUTPUTS.cam].data, start * camSize);
      distances?.cell.set(r[OUTPUTS.cellDistance].data, start);
      distances?.image.set(r[OUTPUTS.imageDistance].data, start);
    }
    return { scores, cam, distances };
  }

  /** Copies each slice's rows of a run into its call's own outputs. */
  private collect(slices: Slice<Pending>[], out: RunRows): void {
    const k = this.classes.length;
    const camSize = k * CAM_SIDE * CAM_SIDE;
    let row = 0;
    for (const { p, start, count } of slices) {
      const total = p.n * p.views;
      p.out ??= {
        scores: new Float32Array(total * k),
        cam: p.withCam ? new Float32Array(total * camSize) : undefined,
        distances: out.distances && { cell: new Float32Array(total), image: new Float32Array(total) },
      };
      p.out.scores.set(out.scores.subarray(row * k, (row + count) * k), start * k);
      if (p.out.cam && out.cam)
        p.out.cam.set(out.cam.subarray(row * camSize, (row + count) * camSize), start * camSize);
      if (p.out.distances && out.distances) {
        p.out.distances.cell.set(out.distances.cell.subarray(row, row + count), start);
        p.out.distances.image.set(out.distances.image.subarray(row, row + count), start);
      }
      p.done += count;
      row += count;
    }
  }

  private finish(p: Pending): void {
    const k = this.classes.length;
    const tta = this.card.testTimeAugmentation;
    const v = p.views;
    const out = p.out!;
    const distances = out.distances && {
      cell: meanOverViews(out.distances.cell, p.n, 1, v),
      image: meanOverViews(out.distances.image, p.n, 1, v),
    };
    p.resolve(
      v > 1 && tta
        ? {
            probabilities: softmaxRows(meanOverViews(out.scores, p.n, k, v), k, tta.temperature),
            cam: out.cam && meanMapsOverViews(out.cam, p.n, k, CAM_SIDE, v),
            views: v,
            reviewThreshold: this.reviewThreshold(true),
            distances,
          }
        : {
            probabilities: out.scores,
            cam: out.cam,
            views: 1,
            reviewThreshold: this.reviewThreshold(false),
            distances,
          },
    );
  }

  /** Row `i` of a run's output as a Prediction. */
  toPrediction(out: BatchOutput, i: number): Prediction {
    return predictionOf(this.card, out, i);
  }

  async close(): Promise<void> {
    clearTimeout(this.wakeTimer);
    clearTimeout(this.bulkIdleTimer);
    const bulk = await this.bulkSession?.catch(() => undefined);
    await Promise.all([this.session.close(), bulk?.close()]);
  }
}
