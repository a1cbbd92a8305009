import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError } from '../errors.js';
import { OUTPUTS } from './classifier-graph.js';
import { OnnxSession } from './onnx/runtime.js';
import type { ModelCard, Prediction } from './types.js';

/** The bundled default model, shipped in the repository's models/ folder. */
export const DEFAULT_MODEL_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../models/model.onnx');

/** model.json beside model.onnx (or `<name>.json` beside `<name>.onnx`). */
export function cardPathFor(modelPath: string): string {
  const sibling = modelPath.replace(/\.onnx$/i, '.json');
  // A name not ending in .onnx has no sibling: never read the model itself as its card.
  return sibling !== modelPath && existsSync(sibling) ? sibling : join(dirname(modelPath), 'model.json');
}

/**
 * Largest number of images coalesced into one network run. onnxruntime-node's run blocks the event loop, so
 * smaller batches keep HTTP latency tails short (16 clients: p99 ~185–197 ms at 8, 206–215 ms at 32).
 */
const MAX_BATCH = 8;

interface Pending {
  input: Float32Array;
  n: number;
  withCam: boolean;
  resolve: (out: BatchOutput) => void;
  reject: (e: unknown) => void;
}

export interface BatchOutput {
  /** n×k calibrated probabilities */
  probabilities: Float32Array;
  /** n×k×7×7 class activation maps, when asked for */
  cam?: Float32Array;
}

/** A trained model file with its card, verified against the card's sha256 before it runs. */
export class Classifier {
  private constructor(
    readonly card: ModelCard,
    readonly path: string,
    private readonly session: OnnxSession,
  ) {}

  static async load(modelPath: string = DEFAULT_MODEL_PATH): Promise<Classifier> {
    let path = resolve(modelPath);
    // A model folder (as `train --out` writes) means the model.onnx inside it.
    if (existsSync(path) && statSync(path).isDirectory()) path = join(path, 'model.onnx');
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
    const session = await OnnxSession.create(bytes, 2, { spin: false });
    for (const out of [OUTPUTS.probabilities, OUTPUTS.cam]) {
      if (!session.outputNames.includes(out)) {
        throw new ModelError(`${path} is not a HematoVision classifier (no '${out}' output).`, 'bad_model');
      }
    }
    return new Classifier(card, path, session);
  }

  get classes(): string[] {
    return this.card.classes;
  }

  get inputSize(): number {
    return this.card.preprocessing.inputSize;
  }

  /**
   * Runs `n` preprocessed images (NCHW float32) through the model. Calls that arrive while the network is
   * busy are queued and then run together as one batch: concurrent requests share a run instead of
   * queueing one by one, and an idle server adds no wait.
   */
  run(input: Float32Array, n: number, withCam = false): Promise<BatchOutput> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, n, withCam, resolve, reject });
      if (!this.busy) void this.drain();
    });
  }

  private readonly queue: Pending[] = [];
  private busy = false;

  private async drain(): Promise<void> {
    this.busy = true;
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      let rows = 0;
      while (this.queue.length > 0 && (batch.length === 0 || rows + this.queue[0].n <= MAX_BATCH)) {
        const p = this.queue.shift()!;
        batch.push(p);
        rows += p.n;
      }
      try {
        const s = this.inputSize;
        const withCam = batch.some((p) => p.withCam);
        const input = batch.length === 1 ? batch[0].input : new Float32Array(rows * 3 * s * s);
        if (batch.length > 1) {
          let off = 0;
          for (const p of batch) {
            input.set(p.input.subarray(0, p.n * 3 * s * s), off);
            off += p.n * 3 * s * s;
          }
        }
        const outputs: string[] = [OUTPUTS.probabilities];
        if (withCam) outputs.push(OUTPUTS.cam);
        const r = await this.session.run({ input: { data: input, dims: [rows, 3, s, s] } }, outputs);
        const k = this.classes.length;
        const probs = r[OUTPUTS.probabilities].data;
        const cam = withCam ? r[OUTPUTS.cam].data : undefined;
        let row = 0;
        for (const p of batch) {
          p.resolve({
            probabilities: probs.slice(row * k, (row + p.n) * k),
            cam: p.withCam && cam ? cam.slice(row * k * 49, (row + p.n) * k * 49) : undefined,
          });
          row += p.n;
        }
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
    this.busy = false;
  }

  /** Row `i` of a probability matrix as a Prediction. */
  toPrediction(probabilities: Float32Array, i: number): Prediction {
    const k = this.classes.length;
    const row = probabilities.subarray(i * k, (i + 1) * k);
    let best = 0;
    for (let c = 1; c < k; c++) if (row[c] > row[best]) best = c;
    const probs: Record<string, number> = {};
    this.classes.forEach((c, j) => (probs[c] = row[j]));
    return {
      label: this.classes[best],
      confidence: row[best],
      probabilities: probs,
      needsReview: row[best] < this.card.reviewThreshold,
    };
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}
