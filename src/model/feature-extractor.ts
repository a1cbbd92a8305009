import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ModelError } from '../errors.js';
import { DEFAULT_MODEL_PATH } from './classifier.js';
import { OUTPUTS } from './classifier-graph.js';
import { readMetadata } from './onnx/graph-builder.js';
import { OnnxSession } from './onnx/runtime.js';

/** Where `hematovision import-backbone` writes by default. */
export const DEFAULT_BACKBONE_PATH = resolve('.cache/backbone.onnx');

/**
 * Runs the backbone part of any model we write (backbone.onnx, or a trained model.onnx, which keeps the
 * `features` output for exactly this) and returns pooled features.
 */
export class FeatureExtractor {
  private constructor(
    private readonly session: OnnxSession,
    readonly path: string,
    /** Identifies the weights, importer and blocks: features from equal ids are interchangeable. */
    readonly backboneId: string,
    readonly blockDims: number[],
    readonly metadata: Record<string, string>,
  ) {}

  static async load(path: string): Promise<FeatureExtractor> {
    if (!existsSync(path)) throw new ModelError(`Backbone model not found: ${path}.`, 'model_not_found');
    const bytes = readFileSync(path);
    const meta = readMetadata(bytes);
    const id = meta['hematovision.backbone_id'];
    if (!id) throw new ModelError(`${path} was not written by HematoVision (no backbone id).`, 'bad_model');
    const session = await OnnxSession.create(bytes);
    if (!session.outputNames.includes(OUTPUTS.features)) {
      throw new ModelError(`${path} has no '${OUTPUTS.features}' output.`, 'bad_model');
    }
    const dims = meta['hematovision.feature_dims'].split(',').map(Number);
    return new FeatureExtractor(session, path, id, dims, meta);
  }

  get featureDim(): number {
    return this.blockDims.reduce((a, b) => a + b, 0);
  }

  /** n preprocessed images (NCHW float32, 224²) → n×featureDim. */
  async extract(input: Float32Array, n: number, size = 224): Promise<Float32Array> {
    const r = await this.session.run({ input: { data: input, dims: [n, 3, size, size] } }, [
      OUTPUTS.features,
    ]);
    return r[OUTPUTS.features].data;
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

/** The backbone to train on: the given file, else an imported backbone in .cache, else the bundled model. */
export function resolveBackbonePath(explicit?: string): string {
  if (explicit) return resolve(explicit);
  if (existsSync(DEFAULT_BACKBONE_PATH)) return DEFAULT_BACKBONE_PATH;
  if (existsSync(DEFAULT_MODEL_PATH)) return DEFAULT_MODEL_PATH;
  throw new ModelError(
    'No backbone found. Run `hematovision import-backbone --tflite mobilenet_v2_1.0_224_quant.tflite` first, ' +
      'or pass --backbone with a HematoVision model.onnx.',
    'model_not_found',
  );
}
