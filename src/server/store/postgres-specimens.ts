/**
 * The specimens and signed report revisions of the PostgreSQL case store. Rows are selected in SQLite's
 * shapes (sqlite-rows.ts SpecimenRow, Signoff), so rowToSpecimen owns turning them into specimens.
 */
import type pg from 'pg';
import { isoText } from './postgres-rows.js';
import { likeAnywhere, rowToSpecimen, type SpecimenRow } from './sqlite-rows.js';
import type { NewSpecimen, Signoff, Specimen, SpecimenFilter, SpecimenSort } from './types.js';

const SELECT_SPECIMEN = `
  SELECT s.id, s.source, s.note, s.target_count, ${isoText('s.created_at')} AS created_at,
    ${isoText('s.updated_at')} AS updated_at, s.version, s.clinic,
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
  const conds: string[] = [];
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
  const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
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
