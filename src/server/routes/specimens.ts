/**
 * Specimens: create, list, edit, (soft) delete and restore them, one specimen's differential and cells, its
 * cells as CSV, signing its report, and the report itself (specimen-report.ts, given the loader here).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { LIST_DEFAULTS, SPECIMEN_ID_MAX } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import { clinicScope, maySee } from '../auth/access.js';
import { actingName, actor } from '../auth/guard.js';
import type { HematoVision } from '../../pipeline.js';
import type { ReportRenderer } from '../../report/render-thread.js';
import { casesCsvStream } from '../cases-csv.js';
import type { CsvFormat } from '../csv-thread.js';
import type { CellCrops } from '../cell-crops.js';
import type { RouteSchemas } from '../schemas.js';
import { buildReport, reportSource, specimenJson, specimenPath, specimenState } from '../specimens.js';
import type { CaseStore, Specimen } from '../store/index.js';
import { specimenReportRoutes } from './specimen-report.js';

export interface SpecimenRouteOptions {
  store: CaseStore;
  vision: HematoVision;
  schemas: RouteSchemas;
  crops: CellCrops;
  /** Renders reports in a worker thread (the caller closes it). */
  reports: ReportRenderer;
  /** Formats CSV exports in a worker thread (the caller closes it). */
  csv: CsvFormat;
}

export function specimenNotFound(id: string): HematoError {
  return new HematoError(
    `No specimen ${JSON.stringify(id)}: create it first (POST /api/v1/specimens, or "New specimen" in the app).`,
    'specimen_not_found',
    404,
  );
}

/**
 * A specimen by its id (any case) that is not deleted, or a 404 naming it; with a request, only one its
 * account may see (another clinic's specimen is not found).
 */
export async function findSpecimen(
  store: CaseStore,
  id: string,
  request?: FastifyRequest,
): Promise<Specimen> {
  const s = await store.getSpecimen(id.trim());
  if (!s || s.deleted || (request && !maySee(request.account, s))) throw specimenNotFound(id);
  return s;
}

const blankToNull = (s: string | null | undefined) => (s?.trim() ? s.trim() : null);

export const specimenRoutes: FastifyPluginAsyncTypebox<SpecimenRouteOptions> = async (
  app,
  { store, vision, schemas, crops, reports, csv },
) => {
  const classes = vision.card.classes;

  app.post('/specimens', { schema: schemas.createSpecimen }, async (request, reply) => {
    const id = request.body.id.trim();
    if (id.length > SPECIMEN_ID_MAX)
      throw new HematoError(
        `A specimen id has at most ${SPECIMEN_ID_MAX} characters (this one has ${id.length}).`,
        'invalid_request',
      );
    const created = await store.addSpecimen({
      id,
      source: blankToNull(request.body.source),
      note: blankToNull(request.body.note),
      targetCount: request.body.targetCount ?? 100,
      clinic: request.account?.role === 'clinic' ? request.account.clinic : null,
    });
    if (!created) {
      const deleted = (await store.getSpecimen(id))?.deleted;
      throw new HematoError(
        deleted
          ? `A specimen ${JSON.stringify(id)} was deleted (its id stays taken): an admin can restore it, or choose another id.`
          : `A specimen ${JSON.stringify(id)} exists already (ids are unique whatever their case): open it, or choose another id.`,
        'specimen_exists',
        409,
      );
    }
    await audit(request, 'create', created.id, '');
    return reply.code(201).header('location', specimenPath(created.id)).send(specimenJson(created));
  });

  app.get('/specimens', { schema: schemas.listSpecimens }, async (request) => {
    const { limit = LIST_DEFAULTS.limit, offset = LIST_DEFAULTS.offset, search, sort } = request.query;
    const clinic = clinicScope(request.account);
    const { specimens, total } = await store.listSpecimens({ search, sort, limit, offset, clinic });
    return { specimens: specimens.map(specimenJson), total };
  });

  app.get('/specimens/:id', { schema: schemas.getSpecimen }, async (request) => {
    const s = await findSpecimen(store, request.params.id, request);
    return (await specimenState(store, classes, s)).detail;
  });

  app.patch('/specimens/:id', { schema: schemas.updateSpecimen }, async (request) => {
    const s = await findSpecimen(store, request.params.id, request);
    const { source, note, targetCount } = request.body;
    const fields = {
      source: source === undefined ? s.source : blankToNull(source),
      note: note === undefined ? s.note : blankToNull(note),
      targetCount: targetCount ?? s.targetCount,
    };
    const updated = await store.updateSpecimen(s.id, fields);
    if (!updated) throw specimenNotFound(request.params.id); // deleted meanwhile
    const changed = (['source', 'note', 'targetCount'] as const).filter((k) => fields[k] !== s[k]);
    if (changed.length > 0) await audit(request, 'update', s.id, changed.join(', '));
    return specimenJson(updated);
  });

  // Soft, as for a case. A specimen holding images is refused rather than emptied or deleted with them: its
  // images are results filed under one patient's slide, and detaching them would leave cells nobody can
  // attribute, while deleting them along would hide results behind one click. A lab deletes the images it
  // means to (each with its own reason), then the empty specimen.
  app.delete('/specimens/:id', { schema: schemas.deleteSpecimen }, async (request, reply) => {
    const s = await findSpecimen(store, request.params.id, request);
    const reason = request.body.reason.trim();
    const outcome = await store.softDeleteSpecimen(s.id, { actor: actor(request), reason });
    if (outcome === 'not_found') throw specimenNotFound(request.params.id);
    if (outcome === 'has_images') {
      const n = (await store.getSpecimen(s.id))?.imageCount ?? s.imageCount;
      throw new HematoError(
        `Specimen ${JSON.stringify(s.id)} holds ${n === 1 ? 'an image' : `${n} images`}: delete ${n === 1 ? 'it' : 'them'} first (a specimen is never deleted with its images).`,
        'specimen_not_empty',
        409,
      );
    }
    await audit(request, 'delete', s.id, reason);
    return reply.code(204).send(null);
  });

  app.post('/specimens/:id/restore', { schema: schemas.restoreSpecimen }, async (request) => {
    const s = await store.getSpecimen(request.params.id.trim());
    if (!s || !maySee(request.account, s)) throw specimenNotFound(request.params.id);
    if (!s.deleted)
      throw new HematoError(
        `Specimen ${JSON.stringify(s.id)} is not deleted: nothing to restore.`,
        'not_deleted',
        409,
      );
    await store.restoreSpecimen(s.id);
    await audit(request, 'restore', s.id, '');
    return specimenJson((await store.getSpecimen(s.id))!);
  });

  app.get('/specimens/:id/cells.csv', { schema: schemas.specimenCsv }, async (request, reply) => {
    const s = await findSpecimen(store, request.params.id, request);
    const name = s.id.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'specimen';
    await audit(request, 'export', s.id, 'cells.csv');
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="hematovision-${name}-cells.csv"`)
      .send(await casesCsvStream(store, classes, { specimen: s.id, sort: 'oldest' }, { formatter: csv }));
  });

  app.post('/specimens/:id/sign', { schema: schemas.signSpecimen }, async (request, reply) => {
    const s = await findSpecimen(store, request.params.id, request);
    const reviewer = actingName(request, request.body.reviewer, 'signer');
    const state = await specimenState(store, classes, s);
    if (state.detail.signed)
      throw new HematoError(
        `Revision ${state.detail.revision} of specimen ${JSON.stringify(s.id)} is signed already and nothing changed since.`,
        'already_signed',
        409,
      );
    const signoff = { reviewer, signedAt: new Date().toISOString() };
    const report = await buildReport(state, crops, vision.card, signoff);
    const pdf = await reports.render({ ...report, generatedAt: signoff.signedAt });
    const stored = await store.addSignoff(s.id, {
      revision: state.detail.revision,
      specimenVersion: s.version,
      ...signoff,
      pdf,
    });
    // Someone signed this revision while the PDF was made: theirs stands.
    if (!stored)
      throw new HematoError(
        `Revision ${state.detail.revision} of specimen ${JSON.stringify(s.id)} was signed meanwhile; reload it.`,
        'already_signed',
        409,
      );
    await audit(request, 'sign', s.id, `revision ${state.detail.revision}`);
    return reply.code(201).send({
      revision: state.detail.revision,
      ...signoff,
      reportUrl: `${specimenPath(s.id)}/report.pdf?revision=${state.detail.revision}`,
    });
  });

  await app.register(specimenReportRoutes, {
    load: async (id, revision, request) => {
      const s = await store.getSpecimen(id.trim());
      if (!s || s.deleted || !maySee(request.account, s)) return null;
      await audit(
        request,
        'export',
        s.id,
        `report.pdf${revision !== undefined ? ` revision ${revision}` : ''}`,
      );
      return reportSource(store, classes, crops, vision.card, s, revision);
    },
    render: (report) => reports.render(report),
  });

  function audit(
    request: FastifyRequest,
    action: 'create' | 'update' | 'delete' | 'restore' | 'sign' | 'export',
    id: string,
    detail: string,
  ) {
    return store.accounts.audit({
      actor: actor(request),
      action,
      targetType: 'specimen',
      targetId: id,
      detail,
      ip: request.ip,
    });
  }
};
