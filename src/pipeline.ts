import { Classifier, DEFAULT_MODEL_PATH } from './model/classifier.js';
import {
  analyzeBatch,
  analyzeImage,
  renderHeatmap,
  type AnalyzeOptions,
  type BatchItem,
  type HeatmapData,
  type ImageAnalysis,
} from './model/analyzer.js';
import { PreparePool } from './model/prepare-pool.js';
import type { ModelCard } from './model/types.js';

export type { AnalyzeOptions, BatchItem, HeatmapData, ImageAnalysis };
export type { CellPrediction, ImagePrediction, ModelCard, Prediction } from './model/types.js';

/** The one entry point: load a model, analyse images. Tensors never leave it. */
export interface HematoVision {
  readonly card: ModelCard;
  /** Whether the model is calibrated for test-time augmentation (AnalyzeOptions.tta). */
  readonly hasTta: boolean;
  /** Results below this confidence are flagged for review (its own value with test-time augmentation). */
  reviewThreshold(tta?: boolean): number;
  /** Throws InvalidImageError (src/errors.ts) for anything that is not a decodable image. */
  analyze(input: Buffer | string, options?: AnalyzeOptions): Promise<ImageAnalysis>;
  /** Several images in one go (faster): each item is its analysis or its own error; one bad image fails alone. */
  analyzeBatch(inputs: (Buffer | string)[], options?: AnalyzeOptions): Promise<BatchItem[]>;
  /**
   * Someone waits on this thread's work (a server's single-photo request, from upload to reply): bulk work
   * (test-time augmentation, many images) starts no new network turn or decoding until the returned function
   * is called, except one unit per 100 ms (model/bulk-hold.ts). Absent: nothing is held.
   */
  interactive?(): () => void;
  /** The heat-map overlay of an earlier analysis (`cams: true`) of the same image. */
  renderHeatmap(input: Buffer | string, data: HeatmapData): Promise<Buffer>;
  close(): Promise<void>;
}

export interface PipelineOptions {
  /** Path to model.onnx (its model.json beside it). Default: the bundled model in models/. */
  model?: string;
  /**
   * Run the network in a worker thread, and decoding and cell location in a pool of three more, so this
   * thread's event loop stays free while they run: for servers and apps that answer other work meanwhile.
   * Default false (one thread, no start-up cost).
   */
  worker?: boolean;
}

/** Loads a model (default: the bundled one) and returns the analyser. */
export async function pipeline(options: PipelineOptions = {}): Promise<HematoVision> {
  const classifier = await Classifier.load(options.model ?? DEFAULT_MODEL_PATH, { worker: options.worker });
  const pool = options.worker ? new PreparePool(2, classifier.hold) : undefined;
  return {
    card: classifier.card,
    hasTta: classifier.hasTta,
    reviewThreshold: (tta) => classifier.reviewThreshold(tta),
    analyze: (input, opts) => analyzeImage(classifier, input, opts, pool),
    analyzeBatch: (inputs, opts) => analyzeBatch(classifier, inputs, opts, pool),
    renderHeatmap,
    interactive: () => classifier.hold.begin(),
    close: async () => {
      await pool?.close();
      await classifier.close();
    },
  };
}
