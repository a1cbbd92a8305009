/**
 * The specimens and signed report revisions of the SQLite case store (postgres-specimens.ts is the same
 * contract on PostgreSQL). Rows are turned into specimens by sqlite-rows.ts rowToSpecimen.
 */
import type Database from 'better-sqlite3';
import {
  likeAnywhere,
  rowToSpecimen,
  SELECT_SPECIMEN,
  SPECIMEN_ORDER,
  type SpecimenRow,
} from './sqlite-rows.js';
import type {
  NewSpecimen,
  Signoff,
  Specimen,
  SpecimenDeleteOutcome,
  SpecimenFields,
  SpecimenFilter,
} from './types.js';

export class SqliteSpecimens {
  /** `stmt`: the store's cache of prepared statements (getSpecimen runs on every predict into a specimen). */
  constructor(
    private readonly db: Database.Database,
    private readonly stmt: (sql: string) => Database.Statement,
  ) {}

  /** Stores a new specimen; undefined when one with that id (any case: the column is NOCASE) exists. */
  add(input: NewSpecimen): Specimen | undefined {
    const now = new Date().toISOString();
    const info = this.db
      .prepare(
        `INSERT INTO specimens (id, source, note, target_count, created_at, updated_at, clinic)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .run(
        input.id,
        input.source ?? null,
        input.note ?? null,
        input.targetCount,
        now,
        now,
        input.clinic ?? null,
      );
    return info.changes === 0 ? undefined : this.get(input.id);
  }

  get(id: string): Specimen | undefined {
    const row = this.stmt(`${SELECT_SPECIMEN} WHERE s.id = ?`).get(id) as SpecimenRow | undefined;
    return row ? rowToSpecimen(row) : undefined;
  }

  list(filter: SpecimenFilter): { specimens: Specimen[]; total: number } {
    const params: Record<string, unknown> = { limit: filter.limit, offset: filter.offset };
    const conds: string[] = ['s.deleted_at IS NULL'];
    if (filter.search !== undefined) {
      conds.push(`(s.id LIKE @q ESCAPE '\\' OR s.source LIKE @q ESCAPE '\\' OR s.note LIKE @q ESCAPE '\\')`);
      params.q = likeAnywhere(filter.search);
    }
    if (filter.clinic !== undefined) {
      conds.push('s.clinic = @clinic');
      params.clinic = filter.clinic;
    }
    const where = `WHERE ${conds.join(' AND ')}`;
    const { limit: _l, offset: _o, ...countParams } = params;
    const total = (
      this.db.prepare(`SELECT count(*) AS n FROM specimens s ${where}`).get(countParams) as { n: number }
    ).n;
    const rows = this.db
      .prepare(
        `${SELECT_SPECIMEN} ${where} ORDER BY ${SPECIMEN_ORDER[filter.sort ?? 'newest']} LIMIT @limit OFFSET @offset`,
      )
      .all(params) as SpecimenRow[];
    return { specimens: rows.map(rowToSpecimen), total };
  }

  /** The version grows only when a field changed: saving an unchanged form leaves a signed report current. */
  update(id: string, fields: SpecimenFields): Specimen | undefined {
    this.db
      .prepare(
        `UPDATE specimens SET source = @source, note = @note, target_count = @targetCount,
           version = version + 1, updated_at = @now
         WHERE id = @id AND deleted_at IS NULL
           AND (source IS NOT @source OR note IS NOT @note OR target_count IS NOT @targetCount)`,
      )
      .run({ ...fields, id, now: new Date().toISOString() });
    const s = this.get(id);
    return s && !s.deleted ? s : undefined;
  }

  softDelete(id: string, by: { actor: string; reason: string }): SpecimenDeleteOutcome {
    const { changes } = this.db
      .prepare(
        `UPDATE specimens SET deleted_at = @now, deleted_by = @actor, delete_reason = @reason
         WHERE id = @id AND deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.specimen_id = specimens.id AND c.deleted_at IS NULL)`,
      )
      .run({ ...by, id, now: new Date().toISOString() });
    if (changes > 0) return 'deleted';
    const s = this.get(id);
    return s && !s.deleted ? 'has_images' : 'not_found';
  }

  restore(id: string): boolean {
    const sql = `UPDATE specimens SET deleted_at = NULL, deleted_by = NULL, delete_reason = NULL
      WHERE id = ? AND deleted_at IS NOT NULL`;
    return this.db.prepare(sql).run(id).changes > 0;
  }

  signoffs(specimenId: string): Signoff[] {
    return this.db
      .prepare(
        `SELECT revision, reviewer, signed_at AS signedAt, specimen_version AS specimenVersion
         FROM specimen_signoffs WHERE specimen_id = ? ORDER BY revision`,
      )
      .all(specimenId) as Signoff[];
  }

  /** False when that revision exists already (someone signed meanwhile). */
  addSignoff(specimenId: string, signoff: Signoff & { pdf: Buffer }): boolean {
    const info = this.db
      .prepare(
        `INSERT INTO specimen_signoffs (specimen_id, revision, reviewer, signed_at, specimen_version, report_pdf)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      )
      .run(
        specimenId,
        signoff.revision,
        signoff.reviewer,
        signoff.signedAt,
        signoff.specimenVersion,
        signoff.pdf,
      );
    return info.changes > 0;
  }

  readSignedReport(specimenId: string, revision: number): Buffer | null {
    const row = this.db
      .prepare('SELECT report_pdf FROM specimen_signoffs WHERE specimen_id = ? AND revision = ?')
      .get(specimenId, revision) as { report_pdf: Buffer } | undefined;
    return row?.report_pdf ?? null;
  }
}
