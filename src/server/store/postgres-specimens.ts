/**
 * The specimens and signed report revisions of the PostgreSQL case store. Rows are selected in SQLite's
 * shapes (sqlite-rows.ts SpecimenRow, Signoff), so rowToSpecimen owns turning them into specimens.
 */
import type pg from 'pg';
import { isoText } from './postgres-rows.js';
import { likeAnywhere, rowToSpecimen, type SpecimenRow } from './sqlite-rows.js';
import type {
  NewSpecimen,
  Signoff,
  Specimen,
  SpecimenDeleteOutcome,
  SpecimenFields,
  SpecimenFilter,
  SpecimenSort,
} from './types.js';

const SELECT_SPECIMEN = `
  SELECT s.id, s.source, s.note, s.target_count, ${isoText('s.created_at')} AS created_at,
    ${isoText('s.updated_at')} AS updated_at, s.version, s.clinic, ${isoText('s.deleted_at')} AS deleted_at,
    s.deleted_by, s.delete_reason,
    (SELECT count(*)::int FROM cases WHERE specimen_id = s.id AND deleted_at IS NULL) AS image_count,
    (SELECT coalesce(sum(greatest(json_array_length(cells), 1)), 0)::int FROM cases
      WHERE specimen_id = s.id AND deleted_at IS NULL) AS cell_count
  FROM specimens s`;

// "id" sorts as SQLite's COLLATE NOCASE does: case folded, then byte order.
const SPECIMEN_ORDER: Record<SpecimenSort, string> = {
  newest: 's.created_at DESC, s.seq DESC',
  oldest: 's.created_at ASC, s.seq ASC',
  updated: 's.updated_at DESC, s.seq DESC',
  id: 'lower(s.id) COLLATE "C" ASC',
};

/** Stores a new specimen; undefined when one with that id, in any case, exists (the lower(id) index). */
export async function addSpecimen(pool: pg.Pool, input: NewSpecimen): Promise<Specimen | undefined> {
  const now = new Date().toISOString();
  const { rowCount } = await pool.query(
    `INSERT INTO specimens (id, source, note, target_count, created_at, updated_at, clinic)
     VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT DO NOTHING`,
    [input.id, input.source ?? null, input.note ?? null, input.targetCount, now, input.clinic ?? null],
  );
  return rowCount ? getSpecimen(pool, input.id) : undefined;
}

export async function getSpecimen(pool: pg.Pool, id: string): Promise<Specimen | undefined> {
  const { rows } = await pool.query<SpecimenRow>(`${SELECT_SPECIMEN} WHERE lower(s.id) = lower($1)`, [id]);
  return rows[0] ? rowToSpecimen(rows[0]) : undefined;
}

export async function listSpecimens(
  pool: pg.Pool,
  filter: SpecimenFilter,
): Promise<{ specimens: Specimen[]; total: number }> {
  const params: unknown[] = [];
  const conds: string[] = ['s.deleted_at IS NULL'];
  if (filter.search !== undefined) {
    // ILIKE: any case, as SQLite's LIKE (ASCII); wildcards in the text are escaped.
    params.push(likeAnywhere(filter.search));
    const q = `$${params.length}`;
    conds.push(
      `(s.id ILIKE ${q} ESCAPE '\\' OR s.source ILIKE ${q} ESCAPE '\\' OR s.note ILIKE ${q} ESCAPE '\\')`,
    );
  }
  if (filter.clinic !== undefined) {
    params.push(filter.clinic);
    conds.push(`s.clinic = $${params.length}`);
  }
  const where = `WHERE ${conds.join(' AND ')}`;
  const n = params.length;
  const [count, page] = await Promise.all([
    pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM specimens s ${where}`, params),
    pool.query<SpecimenRow>(
      `${SELECT_SPECIMEN} ${where} ORDER BY ${SPECIMEN_ORDER[filter.sort ?? 'newest']}
       LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...params, filter.limit, filter.offset],
    ),
  ]);
  return { specimens: page.rows.map(rowToSpecimen), total: count.rows[0].n };
}

/** The version grows only when a field changed: saving an unchanged form leaves a signed report current. */
export async function updateSpecimen(
  pool: pg.Pool,
  id: string,
  fields: SpecimenFields,
): Promise<Specimen | undefined> {
  await pool.query(
    `UPDATE specimens SET source = $2::text, note = $3::text, target_count = $4::int,
       version = version + 1, updated_at = clock_timestamp()
     WHERE lower(id) = lower($1) AND deleted_at IS NULL AND (source IS DISTINCT FROM $2::text
       OR note IS DISTINCT FROM $3::text OR target_count IS DISTINCT FROM $4::int)`,
    [id, fields.source, fields.note, fields.targetCount],
  );
  const s = await getSpecimen(pool, id);
  return s && !s.deleted ? s : undefined;
}

/** The check for images and the delete are one statement: an upload committing meanwhile is seen or waits. */
export async function softDeleteSpecimen(
  pool: pg.Pool,
  id: string,
  by: { actor: string; reason: string },
): Promise<SpecimenDeleteOutcome> {
  const { rowCount } = await pool.query(
    `UPDATE specimens s SET deleted_at = clock_timestamp(), deleted_by = $2, delete_reason = $3
     WHERE lower(s.id) = lower($1) AND s.deleted_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.specimen_id = s.id AND c.deleted_at IS NULL)`,
    [id, by.actor, by.reason],
  );
  if (rowCount) return 'deleted';
  const s = await getSpecimen(pool, id);
  return s && !s.deleted ? 'has_images' : 'not_found';
}

export async function restoreSpecimen(pool: pg.Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE specimens SET deleted_at = NULL, deleted_by = NULL, delete_reason = NULL
     WHERE lower(id) = lower($1) AND deleted_at IS NOT NULL`,
    [id],
  );
  return (rowCount ?? 0) > 0;
}

export async function signoffs(pool: pg.Pool, specimenId: string): Promise<Signoff[]> {
  const { rows } = await pool.query<Signoff>(
    `SELECT revision, reviewer, ${isoText('signed_at')} AS "signedAt", specimen_version AS "specimenVersion"
     FROM specimen_signoffs WHERE specimen_id = $1 ORDER BY revision`,
    [specimenId],
  );
  return rows;
}

/** False when that revision exists already (someone signed meanwhile, on any replica). */
export async function addSignoff(
  pool: pg.Pool,
  specimenId: string,
  signoff: Signoff & { pdf: Buffer },
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `INSERT INTO specimen_signoffs (specimen_id, revision, reviewer, signed_at, specimen_version, report_pdf)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [specimenId, signoff.revision, signoff.reviewer, signoff.signedAt, signoff.specimenVersion, signoff.pdf],
  );
  return (rowCount ?? 0) > 0;
}

export async function readSignedReport(
  pool: pg.Pool,
  specimenId: string,
  revision: number,
): Promise<Buffer | null> {
  const { rows } = await pool.query<{ report_pdf: Buffer }>(
    'SELECT report_pdf FROM specimen_signoffs WHERE specimen_id = $1 AND revision = $2',
    [specimenId, revision],
  );
  return rows[0]?.report_pdf ?? null;
}
