/** The SQL of the SQLite case store and the mapping between its rows and StoredCase. */
import { orderReasons, type CellPrediction, type ReviewReason } from '../../model/types.js';
import type { CaseFilter, CaseSort, Review, Specimen, StoredCase, StoredCell } from './types.js';

export const ORDER: Record<CaseSort, string> = {
  newest: 'c.created_at DESC, c.rowid DESC',
  oldest: 'c.created_at ASC, c.rowid ASC',
  'least-confident': 'c.confidence ASC, c.created_at DESC, c.rowid DESC',
  'most-confident': 'c.confidence DESC, c.created_at DESC, c.rowid DESC',
};

export interface CaseRow {
  id: string;
  created_at: string;
  file_name: string;
  image_sha256: string;
  image_type: string;
  image_bytes: number;
  width: number;
  height: number;
  heatmap_sha256: string | null;
  model_name: string;
  model_version: string;
  model_sha256: string | null;
  tta: number;
  label: string | null;
  confidence: number;
  needs_review: number;
  review_reasons: string | null;
  probabilities: string;
  cells: string;
  message: string | null;
  has_heatmap_data: number;
  review_label: string | null;
  reviewer: string | null;
  review_note: string | null;
  reviewed_at: string | null;
  specimen_id: string | null;
  /** JSON object: cell index → its latest review. */
  cell_reviews: string | null;
  clinic: string | null;
  deleted_at: string | null;
  deleted_by: string | null;
  delete_reason: string | null;
}

// The latest review per case is the one with the highest id (ids only grow: AUTOINCREMENT). The heat-map
// data itself is read only when a heat map is rendered (readHeatmapData).
export const SELECT_CASE = `
  SELECT c.id, c.created_at, c.file_name, c.image_sha256, c.image_type, c.image_bytes, c.width, c.height,
    c.heatmap_sha256, c.model_name, c.model_version, c.model_sha256, c.tta, c.label, c.confidence, c.needs_review,
    c.review_reasons, c.probabilities, c.cells, c.message, c.heatmap_data IS NOT NULL AS has_heatmap_data,
    r.label AS review_label, r.reviewer AS reviewer, r.note AS review_note, r.reviewed_at AS reviewed_at,
    c.specimen_id, c.clinic, c.deleted_at, c.deleted_by, c.delete_reason,
    (SELECT json_group_object(cr.cell_index, json_object('label', cr.label, 'reviewer', cr.reviewer,
        'note', cr.note, 'reviewedAt', cr.reviewed_at))
      FROM reviews cr
      WHERE cr.id IN (SELECT max(id) FROM reviews WHERE case_id = c.id GROUP BY cell_index)) AS cell_reviews
  FROM cases c
  LEFT JOIN reviews r ON r.id = (SELECT max(id) FROM reviews WHERE case_id = c.id)`;

export const INSERT_CASE = `
  INSERT INTO cases (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
    heatmap_sha256, model_name, model_version, tta, label, confidence, needs_review, review_reasons,
    probabilities, cells, message, heatmap_data, specimen_id, model_sha256, clinic)
  VALUES (@id, @createdAt, @file, @imageSha, @imageType, @imageBytes, @width, @height, @heatmapSha,
    @modelName, @modelVersion, @tta, @label, @confidence, @needsReview, @reviewReasons, @probabilities,
    @cells, @message, @heatmapData, @specimenId, @modelSha256, @clinic)`;

/** Soft delete (@actor, @reason at @now) and its undoing; both change the specimen's version. */
export const SOFT_DELETE = `
  UPDATE cases SET deleted_at = @now, deleted_by = @actor, delete_reason = @reason
  WHERE id = @id AND deleted_at IS NULL`;
export const RESTORE = `
  UPDATE cases SET deleted_at = NULL, deleted_by = NULL, delete_reason = NULL
  WHERE id = @id AND deleted_at IS NOT NULL`;

/** A change to a specimen's images or reviews: its report is no longer the one signed. */
export const TOUCH_SPECIMEN = `
  UPDATE specimens SET version = version + 1, updated_at = @now WHERE id = @specimenId`;

/** A specimen's cell review is open while the model flagged the cell and nobody reviewed it. */
const OPEN_CELL = `EXISTS (SELECT 1 FROM json_each(c.cells) j WHERE json_extract(j.value, '$.needsReview') = 1
  AND NOT EXISTS (SELECT 1 FROM reviews rv WHERE rv.case_id = c.id AND rv.cell_index = j.key))`;
const ANY_FLAGGED_CELL = `EXISTS (SELECT 1 FROM json_each(c.cells) j WHERE json_extract(j.value, '$.needsReview') = 1)`;
const NO_REVIEW = `NOT EXISTS (SELECT 1 FROM reviews rv WHERE rv.case_id = c.id)`;
/**
 * The image's flag as rowToCase derives it: a flagged cell still unreviewed, or an image flagged for itself
 * (no cell found, damaged) that nobody has reviewed.
 */
export const CASE_NEEDS_REVIEW = `(${OPEN_CELL} OR (c.needs_review = 1 AND NOT ${ANY_FLAGGED_CELL} AND ${NO_REVIEW}))`;

export interface SpecimenRow {
  id: string;
  source: string | null;
  note: string | null;
  target_count: number;
  created_at: string;
  updated_at: string;
  version: number;
  image_count: number;
  cell_count: number;
  clinic: string | null;
  deleted_at: string | null;
  deleted_by: string | null;
  delete_reason: string | null;
}

export const SELECT_SPECIMEN = `
  SELECT s.id, s.source, s.note, s.target_count, s.created_at, s.updated_at, s.version, s.clinic,
    s.deleted_at, s.deleted_by, s.delete_reason,
    (SELECT count(*) FROM cases WHERE specimen_id = s.id AND deleted_at IS NULL) AS image_count,
    (SELECT coalesce(sum(max(json_array_length(cells), 1)), 0) FROM cases
      WHERE specimen_id = s.id AND deleted_at IS NULL) AS cell_count
  FROM specimens s`;

export const SPECIMEN_ORDER: Record<string, string> = {
  newest: 's.created_at DESC, s.rowid DESC',
  oldest: 's.created_at ASC, s.rowid ASC',
  updated: 's.updated_at DESC, s.rowid DESC',
  id: 's.id ASC',
};

export function rowToSpecimen(row: SpecimenRow): Specimen {
  return {
    id: row.id,
    source: row.source,
    note: row.note,
    targetCount: row.target_count === 200 ? 200 : 100,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    version: row.version,
    imageCount: row.image_count,
    cellCount: row.cell_count,
    clinic: row.clinic,
    deleted: deletedOf(row),
  };
}

/** A LIKE pattern matching the text literally anywhere (its wildcards escaped; used with ESCAPE '\\'). */
export function likeAnywhere(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/**
 * A case's review flag, reasons and cells. Cases stored before reasons existed were flagged for low
 * confidence (or no cell) only, and their image flag ignored the other cells: both are derived again here,
 * so an old field whose second cell was doubtful now shows as needing review too.
 */
function modelReviewOf(row: CaseRow): {
  needsReview: boolean;
  reviewReasons: ReviewReason[];
  cells: CellPrediction[];
} {
  const stored = JSON.parse(row.cells) as (Omit<CellPrediction, 'reviewReasons'> & {
    reviewReasons?: ReviewReason[];
  })[];
  const cells: CellPrediction[] = stored.map((c) => ({
    ...c,
    reviewReasons: c.reviewReasons ?? (c.needsReview ? ['low_confidence'] : []),
  }));
  if (row.review_reasons !== null) {
    const reviewReasons = JSON.parse(row.review_reasons) as ReviewReason[];
    return { needsReview: row.needs_review === 1, reviewReasons, cells };
  }
  const own: ReviewReason[] =
    row.needs_review === 1 ? [row.label === null ? 'no_cell' : 'low_confidence'] : [];
  const reviewReasons = orderReasons([...own, ...cells.flatMap((c) => c.reviewReasons)]);
  return { needsReview: reviewReasons.length > 0, reviewReasons, cells };
}

/**
 * The model's flags with the reviews applied: a flagged cell needs review until someone reviewed it, an image
 * flagged for itself only (no cell, damaged) until anyone reviewed it. Same rule as CASE_NEEDS_REVIEW.
 */
function reviewOf(row: CaseRow): Pick<StoredCase, 'needsReview' | 'reviewReasons' | 'cells'> {
  const model = modelReviewOf(row);
  const byCell = new Map(
    Object.entries(row.cell_reviews ? (JSON.parse(row.cell_reviews) as Record<string, Review>) : {}).map(
      ([k, v]) => [Number(k), v],
    ),
  );
  const cells: StoredCell[] = model.cells.map((c, i) => ({
    ...c,
    needsReview: c.needsReview && !byCell.has(i),
    review: byCell.get(i) ?? null,
  }));
  const anyFlagged = model.cells.some((c) => c.needsReview);
  const needsReview =
    cells.some((c) => c.needsReview) || (model.needsReview && !anyFlagged && byCell.size === 0);
  return { needsReview, reviewReasons: model.reviewReasons, cells };
}

export function rowToCase(row: CaseRow): StoredCase {
  return {
    id: row.id,
    file: row.file_name,
    createdAt: row.created_at,
    imageSha256: row.image_sha256,
    imageType: row.image_type,
    imageBytes: row.image_bytes,
    width: row.width,
    height: row.height,
    heatmapSha256: row.heatmap_sha256,
    hasHeatmapData: row.has_heatmap_data === 1,
    model: {
      name: row.model_name,
      version: row.model_version,
      sha256: row.model_sha256 ?? null,
      tta: row.tta === 1,
    },
    label: row.label,
    confidence: row.confidence,
    probabilities: JSON.parse(row.probabilities) as Record<string, number>,
    ...reviewOf(row),
    message: row.message,
    review:
      row.review_label === null
        ? null
        : {
            label: row.review_label,
            reviewer: row.reviewer ?? '',
            note: row.review_note ?? '',
            reviewedAt: row.reviewed_at ?? '',
          },
    specimenId: row.specimen_id,
    clinic: row.clinic,
    deleted: deletedOf(row),
  };
}

/** A case's or specimen's soft delete, from its three columns. */
function deletedOf(row: {
  deleted_at: string | null;
  deleted_by: string | null;
  delete_reason: string | null;
}): { at: string; by: string; reason: string } | null {
  return row.deleted_at === null
    ? null
    : { at: row.deleted_at, by: row.deleted_by ?? '', reason: row.delete_reason ?? '' };
}

export function whereClause(filter: CaseFilter): { where: string; params: Record<string, unknown> } {
  // Soft-deleted cases are in no list or export (get still finds them).
  const conds: string[] = ['c.deleted_at IS NULL'];
  const params: Record<string, unknown> = {};
  if (filter.clinic !== undefined) {
    conds.push('c.clinic = @clinic');
    params.clinic = filter.clinic;
  }
  if (filter.label !== undefined) {
    conds.push('c.label = @label');
    params.label = filter.label;
  }
  if (filter.reviewed !== undefined) {
    conds.push(`${filter.reviewed ? '' : 'NOT '}EXISTS (SELECT 1 FROM reviews WHERE case_id = c.id)`);
  }
  if (filter.file !== undefined) {
    // A literal substring: LIKE's wildcards in the query are escaped.
    conds.push(`c.file_name LIKE @file ESCAPE '\\'`); // LIKE ignores ASCII case
    params.file = likeAnywhere(filter.file);
  }
  if (filter.specimen !== undefined) {
    conds.push('c.specimen_id = @specimen COLLATE NOCASE');
    params.specimen = filter.specimen.trim();
  }
  if (filter.needsReview !== undefined) {
    // Rows stored before review reasons flagged the image by its first cell only: the cells are asked too.
    conds.push(filter.needsReview ? CASE_NEEDS_REVIEW : `NOT ${CASE_NEEDS_REVIEW}`);
  }
  return { where: `WHERE ${conds.join(' AND ')}`, params };
}
