/**
 * What the server needs of a case store, independent of the database behind it (SQLite today: sqlite.ts;
 * a PostgreSQL implementation fills the same interface). Rows are the shapes the routes read.
 */
import type { Static } from '@sinclair/typebox';
import type { CaseModel as CaseModelSchema, CaseSort as CaseSortJson, ReviewJson } from '../../api/index.js';
import type { CellPrediction, ImagePrediction, ReviewReason } from '../../model/types.js';
import type { HeatmapData } from '../../pipeline.js';

/** A reviewer's verdict, kept beside the model's prediction (never over it): the API's Review. */
export type Review = ReviewJson;

/** The model that analysed a case, and whether it averaged each cell's 8 flips and turns (tta). */
export type CaseModel = Static<typeof CaseModelSchema>;

/** One analysed image as stored. */
export interface StoredCase {
  id: string;
  file: string;
  createdAt: string;
  imageSha256: string;
  imageType: string;
  imageBytes: number;
  width: number;
  height: number;
  /** A rendered heat map stored on disk (at predict time by older versions, or on first request). */
  heatmapSha256: string | null;
  /** The class activation maps are stored (readHeatmapData): a heat map can be rendered on demand. */
  hasHeatmapData: boolean;
  model: CaseModel;
  label: string | null;
  confidence: number;
  probabilities: Record<string, number>;
  needsReview: boolean;
  /** Why it needs review (model/types.ts REVIEW_REASONS); empty when it does not. */
  reviewReasons: ReviewReason[];
  cells: CellPrediction[];
  message: string | null;
  /** The latest review, or null when nobody has reviewed the case. */
  review: Review | null;
}

export interface NewCase {
  file: string;
  image: Buffer;
  imageType: string;
  width: number;
  height: number;
  model: CaseModel;
  prediction: ImagePrediction;
  /** A heat map rendered already. */
  heatmapPng?: Buffer;
  /** The maps to render one from later (`attachHeatmap` stores the result). */
  heatmapData?: HeatmapData;
}

export type CaseSort = CaseSortJson;

export interface CaseFilter {
  /** The model's predicted label (not the review label). */
  label?: string;
  /** true: reviewed at least once; false: never reviewed. */
  reviewed?: boolean;
  /** true: the image or any of its cells needs review (older rows: read from their cells too). */
  needsReview?: boolean;
  /** Part of the file name, any case. */
  file?: string;
  sort?: CaseSort;
}

export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: string;
}

/**
 * The cases, their review history and their image and heat-map bytes. Every method is asynchronous so that a
 * networked database (PostgreSQL) fills the same interface; SQLite answers at once.
 */
export interface CaseStore {
  /** A local folder for upload temp files (same file system as the blobs where that matters). */
  readonly tmpDir: string;
  /** Stores the image (and heat map) durably, then the row; resolves once both are durable. */
  add(input: NewCase): Promise<StoredCase>;
  get(id: string): Promise<StoredCase | undefined>;
  /** A page of matching cases (newest first unless `sort` says otherwise) and how many match in all. */
  list(
    filter: CaseFilter & { limit: number; offset: number },
  ): Promise<{ cases: StoredCase[]; total: number }>;
  /**
   * Every matching case as of the call, in pages: never all in memory, and other requests are served between
   * pages (no cursor is held open across awaits).
   */
  iterate(filter?: CaseFilter): AsyncIterable<StoredCase>;
  /** Class names seen in stored probabilities, for CSV columns of cases made by other model versions. */
  probabilityClasses(): Promise<string[]>;
  /** Appends a review; the updated case, or undefined if there is no such case. */
  addReview(
    id: string,
    review: { label: string; reviewer: string; note?: string },
  ): Promise<StoredCase | undefined>;
  /** Every review of a case, oldest first. */
  reviews(id: string): Promise<Review[]>;
  /** Removes the case, its reviews, and its bytes unless another case uses them; false if there was none. */
  delete(id: string): Promise<boolean>;
  readImage(c: StoredCase): Promise<Buffer>;
  /** The stored heat-map PNG, or null when none was drawn yet. */
  readHeatmap(c: StoredCase): Promise<Buffer | null>;
  /** The maps stored at predict time, to render the case's heat map from; null when there are none. */
  readHeatmapData(id: string): Promise<HeatmapData | null>;
  /** Stores a drawn heat map for the case (the first one wins); undefined if the case is gone. */
  attachHeatmap(id: string, png: Buffer): Promise<StoredCase | undefined>;
  /** Applied schema migrations, oldest first. */
  migrations(): Promise<AppliedMigration[]>;
  /** Rejects when the database cannot take a write now (for GET /ready); writes nothing. */
  checkWritable?(): Promise<void>;
  close(): Promise<void>;
}
