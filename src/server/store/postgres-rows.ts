/**
 * The SQL of the PostgreSQL case store. It selects the same row shape as SQLite's (sqlite-rows.ts CaseRow:
 * ISO-8601 text times, 0/1 flags, JSON as text), so one function, rowToCase, owns turning rows into cases.
 */
import { insertBlob } from './postgres-blobs.js';
import { likeAnywhere } from './sqlite-rows.js';
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
    c.image_bytes, c.width, c.height, c.heatmap_sha256, c.model_name, c.model_version, c.model_sha256, c.tta::int AS tta,
    c.label, c.confidence, c.needs_review::int AS needs_review, c.review_reasons::text AS review_reasons,
    c.probabilities::text AS probabilities, c.cells::text AS cells, c.message,
    (c.heatmap_data IS NOT NULL)::int AS has_heatmap_data, c.specimen_id, c.clinic,
    ${isoText('c.deleted_at')} AS deleted_at, c.deleted_by, c.delete_reason`;

/** The review columns of CaseRow, from `r` (a review row, or nulls). */
const REVIEW_COLUMNS = `r.label AS review_label, r.reviewer AS reviewer, r.note AS review_note,
    ${isoText('r.reviewed_at')} AS reviewed_at`;

/** Each cell's latest review, as a JSON object text (cell index → Review), or NULL: CaseRow's cell_reviews. */
const CELL_REVIEWS = `(
    SELECT json_object_agg(cr.cell_index, json_build_object('label', cr.label, 'reviewer', cr.reviewer,
      'note', cr.note, 'reviewedAt', ${isoText('cr.reviewed_at')}))::text
    FROM (SELECT DISTINCT ON (cell_index) cell_index, label, reviewer, note, reviewed_at
          FROM reviews WHERE case_id = c.id ORDER BY cell_index, id DESC) cr
  ) AS cell_reviews`;

// The latest review per case is the one with the highest id (an identity: ids only grow).
export const SELECT_CASE = `
  SELECT ${CASE_COLUMNS}, ${REVIEW_COLUMNS}, ${CELL_REVIEWS}
  FROM cases c
  LEFT JOIN LATERAL (
    SELECT label, reviewer, note, reviewed_at FROM reviews WHERE case_id = c.id ORDER BY id DESC LIMIT 1
  ) r ON true`;

/** A change to specimen $<n>'s images or reviews (at time $<now>): its report is no longer the one signed. */
export function touchSpecimen(specimen: string, now: string): string {
  return `UPDATE specimens SET version = version + 1, updated_at = ${now} WHERE id = ${specimen}`;
}

/**
 * The image ($21; and heat map, $22, when there is one), the case (in specimen $23, or none) and the
 * specimen's new version in one statement, so one round trip and one commit; it returns the new case's row. The foreign keys are checked at the end of the statement, when the
 * bytes inserted here are visible to them.
 */
export const INSERT_CASE = `
  WITH image AS (${insertBlob('$4', '$21')}), heatmap AS (${insertBlob('$9', '$22')}),
    touched AS (${touchSpecimen('$23', '$2')})
  INSERT INTO cases AS c (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
    heatmap_sha256, model_name, model_version, tta, label, confidence, needs_review, review_reasons,
    probabilities, cells, message, heatmap_data, specimen_id, model_sha256, clinic)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $23,
    $24, $25)
  RETURNING ${CASE_COLUMNS}, NULL AS review_label, NULL AS reviewer, NULL AS review_note, NULL AS reviewed_at,
    NULL AS cell_reviews`;

/**
 * Appends a review ($1 label, $2 reviewer, $3 note, $4 time, $6 cell) to case $5 and bumps its specimen's
 * version; returns the case's id, or no row.
 */
export const ADD_REVIEW = `
  WITH r AS (
    INSERT INTO reviews (case_id, label, reviewer, note, reviewed_at, cell_index)
    SELECT id, $1, $2, $3, $4, $6 FROM cases WHERE id = $5
    RETURNING case_id
  ), touched AS (
    ${touchSpecimen('(SELECT specimen_id FROM cases WHERE id = (SELECT case_id FROM r))', '$4')}
  )
  SELECT case_id FROM r`;

/** Stores heat-map bytes $3 under sha $1 and points case $2 at them unless it has one; returns the case if so. */
export const ATTACH_HEATMAP = `
  WITH b AS (${insertBlob('$1', '$3')})
  UPDATE cases SET heatmap_sha256 = $1 WHERE id = $2 AND heatmap_sha256 IS NULL RETURNING id`;

const FLAGGED_CELLS = `json_array_elements(c.cells) WITH ORDINALITY j(v, n) WHERE (j.v->>'needsReview')::boolean`;
/** A cell the model flagged that nobody reviewed (ordinality counts from 1, cell indexes from 0). */
const OPEN_CELL = `EXISTS (SELECT 1 FROM ${FLAGGED_CELLS}
  AND NOT EXISTS (SELECT 1 FROM reviews rv WHERE rv.case_id = c.id AND rv.cell_index = j.n - 1))`;
const NO_REVIEW = `NOT EXISTS (SELECT 1 FROM reviews rv WHERE rv.case_id = c.id)`;
/** The image's flag as rowToCase derives it (sqlite-rows.ts CASE_NEEDS_REVIEW, the same rule). */
const CASE_NEEDS_REVIEW = `(${OPEN_CELL} OR (c.needs_review AND NOT EXISTS (SELECT 1 FROM ${FLAGGED_CELLS})
  AND ${NO_REVIEW}))`;

/** The WHERE clause of a filter, with its parameters numbered from `$<first>`. */
export function whereClause(filter: CaseFilter, first = 1): { where: string; params: unknown[] } {
  // Soft-deleted cases are in no list or export (get still finds them).
  const conds: string[] = ['c.deleted_at IS NULL'];
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${first + params.length - 1}`;
  };
  if (filter.clinic !== undefined) conds.push(`c.clinic = ${param(filter.clinic)}`);
  if (filter.label !== undefined) conds.push(`c.label = ${param(filter.label)}`);
  if (filter.reviewed !== undefined) {
    conds.push(`${filter.reviewed ? '' : 'NOT '}EXISTS (SELECT 1 FROM reviews WHERE case_id = c.id)`);
  }
  if (filter.file !== undefined) {
    // A literal substring, any case, as in SQLite: LIKE's wildcards in the query are escaped.
    conds.push(`c.file_name ILIKE ${param(likeAnywhere(filter.file))} ESCAPE '\\'`);
  }
  if (filter.specimen !== undefined) {
    conds.push(
      `c.specimen_id = (SELECT id FROM specimens WHERE lower(id) = lower(${param(filter.specimen.trim())}))`,
    );
  }
  if (filter.needsReview !== undefined) {
    // Rows stored before review reasons flagged the image by its first cell only: the cells are asked too.
    conds.push(filter.needsReview ? CASE_NEEDS_REVIEW : `NOT ${CASE_NEEDS_REVIEW}`);
  }
  return { where: `WHERE ${conds.join(' AND ')}`, params };
}
