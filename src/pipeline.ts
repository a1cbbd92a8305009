import { Classifier, DEFAULT_MODEL_PATH } from './model/classifier.js';
import { analyzeImage, type AnalyzeOptions, type ImageAnalysis } from './model/analyzer.js';
import type { ModelCard } from './model/types.js';

export type { AnalyzeOptions, ImageAnalysis };
export type { CellPrediction, ImagePrediction, ModelCard, Prediction } from './model/types.js';

/** The one entry point: load a model, analyse images. Tensors never leave it. */
export interface HematoVision {
  readonly card: ModelCard;
  /** Throws InvalidImageError (src/errors.ts) for anything that is not a decodable image. */
  analyze(input: Buffer | string, options?: AnalyzeOptions): Promise<ImageAnalysis>;
  close(): Promise<void>;
}

export interface PipelineOptions {
  /** Path to model.onnx (its model.json beside it). Default: the bundled model in models/. */
  model?: string;
}

/** Loads a model (default: the bundled one) and returns the analyser. */
export async function pipeline(options: PipelineOptions = {}): Promise<HematoVision> {
  const classifier = await Classifier.load(options.model ?? DEFAULT_MODEL_PATH);
  return {
    card: classifier.card,
    analyze: (input, opts) => analyzeImage(classifier, input, opts),
    close: () => classifier.close(),
  };
}

