/**
 * The SQL of the PostgreSQL case store. It selects the same row shape as SQLite's (sqlite-rows.ts CaseRow:
 * ISO-8601 text times, 0/1 flags, JSON as text), so one function, rowToCase, owns turning rows into cases.
 */
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

// The latest review per case is the one with the highest id (an identity: ids only grow).
export const SELECT_CASE = `
  SELECT c.id, ${isoText('c.created_at')} AS created_at, c.file_name, c.image_sha256, c.image_type,
    c.image_bytes, c.width, c.height, c.heatmap_sha256, c.model_name, c.model_version, c.tta::int AS tta,
    c.label, c.confidence, c.needs_review::int AS needs_review, c.review_reasons::text AS review_reasons,
    c.probabilities::text AS probabilities, c.cells::text AS cells, c.message,
    (c.heatmap_data IS NOT NULL)::int AS has_heatmap_data,
    r.label AS review_label, r.reviewer AS reviewer, r.note AS review_note,
    ${isoText('r.reviewed_at')} AS reviewed_at
  FROM cases c
  LEFT JOIN LATERAL (
    SELECT label, reviewer, note, reviewed_at FROM reviews WHERE case_id = c.id ORDER BY id DESC LIMIT 1
  ) r ON true`;

export const INSERT_CASE = `
  INSERT INTO cases (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
    heatmap_sha256, model_name, model_version, tta, label, confidence, needs_review, review_reasons,
    probabilities, cells, message, heatmap_data)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`;

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
