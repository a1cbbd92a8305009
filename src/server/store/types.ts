/**
 * What the server needs of a case store, independent of the database behind it (SQLite today: sqlite.ts;
 * a PostgreSQL implementation fills the same interface). Rows are the shapes the routes read.
 */
import type { Static } from '@sinclair/typebox';
import type { CaseModel as CaseModelSchema, CaseSort as CaseSortJson, ReviewJson } from '../../api/index.js';
import type { CellPrediction, ImagePrediction, ReviewReason } from '../../model/types.js';
import type { HeatmapData } from '../../pipeline.js';
import type { AccountStore } from './accounts.js';

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
  /**
   * A cell the model flagged is still unreviewed (or, for an image without cells or flagged for itself,
   * nobody has reviewed it yet): the image's flag follows from its cells.
   */
  needsReview: boolean;
  /** Why the model flagged it (model/types.ts REVIEW_REASONS), reviewed or not; empty when it did not. */
  reviewReasons: ReviewReason[];
  cells: StoredCell[];
  message: string | null;
  /** The latest review of any of its cells, or null when nobody has reviewed the case. */
  review: Review | null;
  /** The specimen (slide) the image belongs to, or null. */
  specimenId: string | null;
  /** The clinic that uploaded it (a clinic account's), or null. */
  clinic: string | null;
  /** Set while the case is soft-deleted (hidden from lists; restorable). */
  deleted: { at: string; by: string; reason: string } | null;
}

/**
 * A stored cell: the model's prediction, and its latest review. `needsReview` is true while the model
 * flagged it (reviewReasons) and no reviewer has confirmed or corrected it.
 */
export type StoredCell = CellPrediction & { review: Review | null };

/** A specimen (one patient's slide) as stored. */
export interface Specimen {
  /** The lab's accession/specimen id, as first typed (trimmed); unique whatever its case. */
  id: string;
  source: string | null;
  note: string | null;
  targetCount: 100 | 200;
  createdAt: string;
  updatedAt: string;
  /** Grows with every change to the specimen, its images or their reviews. */
  version: number;
  imageCount: number;
  cellCount: number;
  /** The clinic that created it (a clinic account's), or null. */
  clinic: string | null;
  /** Set while the specimen is soft-deleted (hidden from lists; restorable). */
  deleted: { at: string; by: string; reason: string } | null;
}

/** A specimen's own fields, as an edit sets them (the id, which its images and reports are filed under, stays). */
export interface SpecimenFields {
  source: string | null;
  note: string | null;
  targetCount: 100 | 200;
}

/** What a specimen's soft delete did: refused while the specimen holds images that are not deleted. */
export type SpecimenDeleteOutcome = 'deleted' | 'has_images' | 'not_found';

export interface NewSpecimen {
  id: string;
  clinic?: string | null;
  source?: string | null;
  note?: string | null;
  targetCount: 100 | 200;
}

export type SpecimenSort = 'newest' | 'oldest' | 'updated' | 'id';

export interface SpecimenFilter {
  /** Part of the id, source or note, any case. */
  search?: string;
  /** Only this clinic's specimens (a clinic account's view). */
  clinic?: string;
  sort?: SpecimenSort;
  limit: number;
  offset: number;
}

/** A signed, frozen report revision. */
export interface Signoff {
  revision: number;
  reviewer: string;
  signedAt: string;
  /** The specimen's version when signed: the report is current while the specimen still has it. */
  specimenVersion: number;
}

export interface NewCase {
  file: string;
  image: Buffer;
  imageType: string;
  width: number;
  height: number;
  /** The sha256 may be left out (tests, older callers): stored as unknown. */
  model: Omit<CaseModel, 'sha256'> & { sha256?: string | null };
  prediction: ImagePrediction;
  /** A heat map rendered already. */
  heatmapPng?: Buffer;
  /** The maps to render one from later (`attachHeatmap` stores the result). */
  heatmapData?: HeatmapData;
  /** The specimen's id as stored (getSpecimen(...).id). */
  specimenId?: string;
  /** The uploading clinic account's clinic. */
  clinic?: string | null;
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
  /** The images of one specimen (its stored id). */
  specimen?: string;
  /** Only this clinic's cases (a clinic account's view). */
  clinic?: string;
  sort?: CaseSort;
}

export type * from './accounts.js';

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
  /** Jobs any runner (replica) can take (migration 7). */
  readonly jobs: JobRows;
  /** Model versions, their bytes and which one is active. */
  readonly models: ModelRows;
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
  /**
   * Appends a review of one cell (`cell`, 0-based; default 0: the image-level review of older clients); the
   * updated case, or undefined if there is no such case. The caller checks the index against the cells.
   */
  addReview(
    id: string,
    review: { label: string; reviewer: string; note?: string; cell?: number },
  ): Promise<StoredCase | undefined>;
  /** Every review of a case, oldest first, with the cell each one belongs to. */
  reviews(id: string): Promise<(Review & { cell: number })[]>;
  /** Stores a new specimen; undefined when one with that id (any case) exists already. */
  addSpecimen(input: NewSpecimen): Promise<Specimen | undefined>;
  /** By id, any case. */
  getSpecimen(id: string): Promise<Specimen | undefined>;
  /** Specimens not deleted. */
  listSpecimens(filter: SpecimenFilter): Promise<{ specimens: Specimen[]; total: number }>;
  /**
   * Sets a specimen's own fields; its version grows when any changed (the report shows them, so a signed
   * revision is no longer current). Undefined when there is no such specimen or it is deleted.
   */
  updateSpecimen(id: string, fields: SpecimenFields): Promise<Specimen | undefined>;
  /**
   * Soft delete, in one step with the check that it holds no image that is not deleted (an upload cannot slip
   * in between): hidden from lists, getSpecimen still finds it (with `deleted`), nothing is removed.
   */
  softDeleteSpecimen(id: string, by: { actor: string; reason: string }): Promise<SpecimenDeleteOutcome>;
  /** Undoes softDeleteSpecimen; false when there is no such specimen or it is not deleted. */
  restoreSpecimen(id: string): Promise<boolean>;
  /** Signed revisions of a specimen, oldest first. */
  signoffs(specimenId: string): Promise<Signoff[]>;
  /**
   * Freezes a signed revision with its report's bytes; false when that revision exists already (someone
   * signed meanwhile).
   */
  addSignoff(specimenId: string, signoff: Signoff & { pdf: Buffer }): Promise<boolean>;
  /** The frozen PDF of a signed revision, or null. */
  readSignedReport(specimenId: string, revision: number): Promise<Buffer | null>;
  /**
   * Soft delete: the case is hidden from lists, exports and its specimen (get still finds it, with `deleted`)
   * and nothing is removed; false when there is no such case or it is deleted already.
   */
  softDelete(id: string, by: { actor: string; reason: string }): Promise<boolean>;
  /** Undoes softDelete; false when there is no such case or it is not deleted. */
  restore(id: string): Promise<boolean>;
  /** Users, sessions, API tokens and the audit trail, in the same database. */
  readonly accounts: AccountStore;
  /** Removes the case, its reviews, and its bytes unless another case uses them; false if there was none. */
  delete(id: string): Promise<boolean>;
  readImage(c: StoredCase): Promise<Buffer>;
  /** The stored heat-map PNG, or null when none was drawn yet. */
  readHeatmap(c: StoredCase): Promise<Buffer | null>;
  /** The maps stored at predict time, to render the case's heat map from; null when there are none. */
  readHeatmapData(id: string): Promise<HeatmapData | null>;
  /** Stores a drawn heat map for the case (the first one wins); undefined if the case is gone. */
  attachHeatmap(id: string, png: Buffer): Promise<StoredCase | undefined>;
  /**
   * Stores a file export job `jobId` made, where every replica reads it (the data folder's `exports/`, or
   * PostgreSQL's blobs), and records it as that job's file in the same step (migration 11), so that no sweep
   * removes it while the job has not finished yet; its sha256, the key to read it by. A `job_not_held` error
   * (nothing stored, the job unchanged) unless the job is running under `owner`: a runner that lost the job
   * must not replace the file of the runner that took it over.
   */
  putExportFile(jobId: string, owner: string, bytes: Buffer): Promise<string>;
  /** A file putExportFile stored; a `file_missing` error (500) when it is gone. */
  readExportFile(sha: string): Promise<Buffer>;
  /**
   * Deletes the finished jobs (succeeded or failed) of these kinds that finished before `finishedBefore`,
   * then each of their files that no remaining job names (another export of the same bytes keeps it, also
   * one still running that has stored it already). How many jobs and files it removed.
   */
  sweepExports(kinds: string[], finishedBefore: Date): Promise<{ jobs: number; files: number }>;
  /** Applied schema migrations, oldest first. */
  migrations(): Promise<AppliedMigration[]>;
  /** Rejects when the database cannot take a write now (for GET /ready); writes nothing. */
  checkWritable?(): Promise<void>;
  /**
   * Rate-limit counters every replica shares (PostgreSQL). Absent on SQLite: one process, whose in-memory
   * counters are the only ones.
   */
  readonly rateCounters?: RateCounters;
  close(): Promise<void>;
}

/** Fixed-window hit counters by key, shared by the processes that use one database (migration 10). */
export interface RateCounters {
  /**
   * Counts one hit on `key` in one atomic step: a key whose window ended (or a new one) starts a window of
   * `windowMs` at 1. The count so far in the window and the milliseconds left in it.
   */
  hit(key: string, windowMs: number): Promise<{ count: number; ttlMs: number }>;
  /** Removes counters whose window ended; how many. */
  sweep(): Promise<number>;
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed';

/** A long piece of work (an adaptation, …) as stored: what GET /jobs and its kind's routes show. */
export interface JobRow {
  id: string;
  kind: string;
  state: JobState;
  /** 0 to 1. */
  progress: number;
  /** What it is doing now, in words. */
  stage: string | null;
  input: unknown;
  result: unknown;
  error: string | null;
  /** How many times a runner took it (more than one: a replica died while it ran and another took over). */
  attempts: number;
  /** The runner (replica) holding it while it runs. */
  owner: string | null;
  createdAt: string;
  startedAt: string | null;
  updatedAt: string;
  finishedAt: string | null;
}

export type JobOutcome = { state: 'succeeded'; result: unknown } | { state: 'failed'; error: string };

/** The job rows; who runs them (and when) is the job queue's business (server/jobs/). */
export interface JobRows {
  create(kind: string, input: unknown): Promise<JobRow>;
  get(id: string): Promise<JobRow | undefined>;
  /** Newest first; `unfinished`: only those queued or running. */
  list(filter: { kind?: string; unfinished?: boolean; limit: number }): Promise<JobRow[]>;
  /**
   * Takes the job for `owner` (running, one more attempt) unless it has finished: a queued job, or a running
   * one whose runner died (the queue decides that). Undefined when it is finished or gone.
   */
  claim(id: string, owner: string): Promise<JobRow | undefined>;
  /** Claims the oldest queued job of these kinds, if any (the in-process runner). */
  claimNext(kinds: string[], owner: string): Promise<JobRow | undefined>;
  /** Progress of a job `owner` still holds; false when it no longer does (another runner took it over). */
  progress(id: string, owner: string, progress: number, stage: string | null): Promise<boolean>;
  /** Finishes a job `owner` still holds; false when it no longer does. */
  finish(id: string, owner: string, outcome: JobOutcome): Promise<boolean>;
  /** Fails running jobs (of one owner, or all): a restart mid-job. The number failed. */
  failRunning(error: string, owner?: string): Promise<number>;
  /** Fails one job if it is still queued or running (its delivery was given up); false otherwise. */
  failUnfinished(id: string, error: string): Promise<boolean>;
}

/** A stored model version (its bytes apart: ModelRows.readOnnx). */
export interface ModelVersion {
  /** 1, 2, …: the bundled (or first) model is 1. */
  version: number;
  sha256: string;
  name: string;
  /** The model card (model.json). */
  card: unknown;
  /** 'bundled', 'adaptation', … */
  source: string;
  jobId: string | null;
  createdAt: string;
}

export interface ModelRows {
  /** Stores a model (the next version number); the existing version when these bytes are stored already. */
  add(input: {
    sha256: string;
    name: string;
    card: unknown;
    onnx: Buffer;
    source: string;
    jobId?: string | null;
  }): Promise<ModelVersion>;
  list(): Promise<ModelVersion[]>;
  get(version: number): Promise<ModelVersion | undefined>;
  readOnnx(version: number): Promise<Buffer | undefined>;
  /** Makes a stored version the active one (appends to the activation log). */
  activate(version: number): Promise<void>;
  /** The activation log, newest first. */
  activations(limit: number): Promise<{ version: number; activatedAt: string }[]>;
}
