/**
 * The SQL of the PostgreSQL case store. It selects the same row shape as SQLite's (sqlite-rows.ts CaseRow:
 * ISO-8601 text times, 0/1 flags, JSON as text), so one function, rowToCase, owns turning rows into cases.
 */
import { insertBlob } from './postgres-blobs.js';
import type { CaseFilter, CaseSort } from './types.js';

export const ORDER: Record<CaseSort, string> = {
  newest: 'c.created_at DESC, c.seq DESC',
  oldest: 'c.created_at ASC, c.seq ASC',
  'least-confident': 'c.confidence ASC, c.created_at DESC, c.seq DESC',
  'most-confident': 'c.confidence DESC, c.created_at DESC, c.seq DESC',
};

/** A timestamptz as JavaScript's toISOString() writes it (what SQLite stores). */
export function isoText(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** A case's own columns in the CaseRow shape, from `cases c`. */
const CASE_COLUMNS = `c.id, ${isoText('c.created_at')} AS created_at, c.file_name, c.image_sha256, c.image_type,
    c.image_bytes, c.width, c.height, c.heatmap_sha256, c.model_name, c.model_version, c.tta::int AS tta,
    c.label, c.confidence, c.needs_review::int AS needs_review, c.review_reasons::text AS review_reasons,
    c.probabilities::text AS probabilities, c.cells::text AS cells, c.message,
    (c.heatmap_data IS NOT NULL)::int AS has_heatmap_data`;

/** The review columns of CaseRow, from `r` (a review row, or nulls). */
const REVIEW_COLUMNS = `r.label AS review_label, r.reviewer AS reviewer, r.note AS review_note,
    ${isoText('r.reviewed_at')} AS reviewed_at`;

// The latest review per case is the one with the highest id (an identity: ids only grow).
export const SELECT_CASE = `
  SELECT ${CASE_COLUMNS}, ${REVIEW_COLUMNS}
  FROM cases c
  LEFT JOIN LATERAL (
    SELECT label, reviewer, note, reviewed_at FROM reviews WHERE case_id = c.id ORDER BY id DESC LIMIT 1
  ) r ON true`;

/**
 * The image ($21; and heat map, $22, when there is one) and the case in one statement, so one round trip and one
 * commit; it returns the new case's row. The foreign keys are checked at the end of the statement, when the
 * bytes inserted here are visible to them.
 */
export const INSERT_CASE = `
  WITH image AS (${insertBlob('$4', '$21')}), heatmap AS (${insertBlob('$9', '$22')})
  INSERT INTO cases AS c (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
    heatmap_sha256, model_name, model_version, tta, label, confidence, needs_review, review_reasons,
    probabilities, cells, message, heatmap_data)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
  RETURNING ${CASE_COLUMNS}, NULL AS review_label, NULL AS reviewer, NULL AS review_note, NULL AS reviewed_at`;

/** Appends a review ($1 label, $2 reviewer, $3 note, $4 time) to case $5; returns the case, or no row. */
export const ADD_REVIEW = `
  WITH r AS (
    INSERT INTO reviews (case_id, label, reviewer, note, reviewed_at)
    SELECT id, $1, $2, $3, $4 FROM cases WHERE id = $5
    RETURNING case_id, label, reviewer, note, reviewed_at
  )
  SELECT ${CASE_COLUMNS}, ${REVIEW_COLUMNS} FROM cases c JOIN r ON r.case_id = c.id`;

/** Stores heat-map bytes $3 under sha $1 and points case $2 at them unless it has one; returns the case if so. */
export const ATTACH_HEATMAP = `
  WITH b AS (${insertBlob('$1', '$3')})
  UPDATE cases SET heatmap_sha256 = $1 WHERE id = $2 AND heatmap_sha256 IS NULL RETURNING id`;

/** The WHERE clause of a filter, with its parameters numbered from `$<first>`. */
export function whereClause(filter: CaseFilter, first = 1): { where: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${first + params.length - 1}`;
  };
  if (filter.label !== undefined) conds.push(`c.label = ${param(filter.label)}`);
  if (filter.reviewed !== undefined) {
    conds.push(`${filter.reviewed ? '' : 'NOT '}EXISTS (SELECT 1 FROM reviews WHERE case_id = c.id)`);
  }
  if (filter.file !== undefined) {
    // A literal substring, any case, as in SQLite: LIKE's wildcards in the query are escaped.
    const pattern = `%${filter.file.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
    conds.push(`c.file_name ILIKE ${param(pattern)} ESCAPE '\\'`);
  }
  if (filter.needsReview !== undefined) {
    // Rows stored before review reasons flagged the image by its first cell only: ask the cells too.
    const flagged = `(c.needs_review OR EXISTS (SELECT 1 FROM json_array_elements(c.cells) e WHERE (e->>'needsReview')::boolean))`;
    conds.push(filter.needsReview ? flagged : `NOT ${flagged}`);
  }
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}
