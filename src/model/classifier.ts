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
    const session = await OnnxSession.create(bytes);
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

  /** Runs `n` preprocessed images (NCHW float32) through the model. */
  async run(input: Float32Array, n: number, withCam = false): Promise<BatchOutput> {
    const s = this.inputSize;
    const outputs: string[] = [OUTPUTS.probabilities];
    if (withCam) outputs.push(OUTPUTS.cam);
    const r = await this.session.run({ input: { data: input, dims: [n, 3, s, s] } }, outputs);
    return { probabilities: r[OUTPUTS.probabilities].data, cam: withCam ? r[OUTPUTS.cam].data : undefined };
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
