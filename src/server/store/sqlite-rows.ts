/** The SQL of the SQLite case store and the mapping between its rows and StoredCase. */
import { orderReasons, type CellPrediction, type ReviewReason } from '../../model/types.js';
import type { CaseFilter, CaseSort, StoredCase } from './types.js';

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
}

// The latest review per case is the one with the highest id (ids only grow: AUTOINCREMENT). The heat-map
// data itself is read only when a heat map is rendered (readHeatmapData).
export const SELECT_CASE = `
  SELECT c.id, c.created_at, c.file_name, c.image_sha256, c.image_type, c.image_bytes, c.width, c.height,
    c.heatmap_sha256, c.model_name, c.model_version, c.tta, c.label, c.confidence, c.needs_review,
    c.review_reasons, c.probabilities, c.cells, c.message, c.heatmap_data IS NOT NULL AS has_heatmap_data,
    r.label AS review_label, r.reviewer AS reviewer, r.note AS review_note, r.reviewed_at AS reviewed_at
  FROM cases c
  LEFT JOIN reviews r ON r.id = (SELECT max(id) FROM reviews WHERE case_id = c.id)`;

export const INSERT_CASE = `
  INSERT INTO cases (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
    heatmap_sha256, model_name, model_version, tta, label, confidence, needs_review, review_reasons,
    probabilities, cells, message, heatmap_data)
  VALUES (@id, @createdAt, @file, @imageSha, @imageType, @imageBytes, @width, @height, @heatmapSha,
    @modelName, @modelVersion, @tta, @label, @confidence, @needsReview, @reviewReasons, @probabilities,
    @cells, @message, @heatmapData)`;

/**
 * A case's review flag, reasons and cells. Cases stored before reasons existed were flagged for low
 * confidence (or no cell) only, and their image flag ignored the other cells: both are derived again here,
 * so an old field whose second cell was doubtful now shows as needing review too.
 */
function reviewOf(row: CaseRow): Pick<StoredCase, 'needsReview' | 'reviewReasons' | 'cells'> {
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
    model: { name: row.model_name, version: row.model_version, tta: row.tta === 1 },
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
  };
}

export function whereClause(filter: CaseFilter): { where: string; params: Record<string, unknown> } {
  const conds: string[] = [];
  const params: Record<string, unknown> = {};
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
    params.file = `%${filter.file.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
  }
  if (filter.needsReview !== undefined) {
    // Rows stored before review reasons flagged the image by its first cell only: ask the cells too.
    const flagged = `(c.needs_review = 1 OR EXISTS (SELECT 1 FROM json_each(c.cells) WHERE json_extract(value, '$.needsReview') = 1))`;
    conds.push(filter.needsReview ? flagged : `NOT ${flagged}`);
  }
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}
