/**
 * The stored cases: list, CSV export, one case, its image and heat map, review, (soft) delete and restore.
 * A clinic account sees only its clinic's cases (a case of another clinic is "not found"); every change and
 * export goes into the audit trail.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { LIST_DEFAULTS } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import { clinicScope, maySee } from '../auth/access.js';
import { actingName, actor } from '../auth/guard.js';
import type { HematoVision } from '../../pipeline.js';
import { caseJson } from '../case-json.js';
import { casesCsvStream } from '../cases-csv.js';
import type { CsvFormat } from '../csv-thread.js';
import type { CellCrops } from '../cell-crops.js';
import { HeatmapRenderer } from '../heatmaps.js';
import { notFound } from '../http-errors.js';
import type { RouteSchemas } from '../schemas.js';
import type { CaseStore, StoredCase } from '../store/index.js';

export interface CaseRouteOptions {
  store: CaseStore;
  vision: HematoVision;
  schemas: RouteSchemas;
  crops: CellCrops;
  /** Formats CSV exports in a worker thread (the caller closes it). */
  csv: CsvFormat;
}

/** Request types come from the route schemas (src/api) through the TypeBox type provider. */
export const caseRoutes: FastifyPluginAsyncTypebox<CaseRouteOptions> = async (
  app,
  { store, vision, schemas, crops, csv },
) => {
  const heatmaps = new HeatmapRenderer(store, vision);
  /** A case the account may see and that is not deleted, or 404 (another clinic's case is not found). */
  const findCase = async (id: string, request: FastifyRequest): Promise<StoredCase> => {
    const c = await store.get(id);
    if (!c || c.deleted || !maySee(request.account, c)) throw notFound(id);
    return c;
  };

  app.get('/cases', { schema: schemas.listCases }, async (request) => {
    // Validation fills in the defaults already; the type cannot know.
    const { limit = LIST_DEFAULTS.limit, offset = LIST_DEFAULTS.offset, ...filter } = request.query;
    const { cases, total } = await store.list({
      ...filter,
      clinic: clinicScope(request.account),
      limit,
      offset,
    });
    return { cases: cases.map(caseJson), total };
  });

  app.get('/cases.csv', { schema: schemas.casesCsv }, async (request, reply) => {
    const filter = { ...request.query, clinic: clinicScope(request.account) };
    await store.accounts.audit({
      actor: actor(request),
      action: 'export',
      targetType: 'cases',
      targetId: 'cases.csv',
      detail: new URLSearchParams(request.query as Record<string, string>).toString(),
      ip: request.ip,
    });
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', 'attachment; filename="hematovision-cases.csv"')
      .send(await casesCsvStream(store, vision.card.classes, filter, { formatter: csv }));
  });

  app.get('/cases/:id', { schema: schemas.getCase }, async (request) => {
    const c = await findCase(request.params.id, request);
    return { ...caseJson(c), reviews: await store.reviews(c.id) };
  });

  app.get('/cases/:id/image', { schema: schemas.caseImage }, async (request, reply) => {
    const c = await findCase(request.params.id, request);
    const bytes = await store.readImage(c);
    return reply
      .type(c.imageType)
      .header('content-disposition', contentDisposition(c.file))
      .header('cache-control', 'private, max-age=3600')
      .send(bytes);
  });

  app.get('/cases/:id/heatmap.png', { schema: schemas.caseHeatmap }, async (request, reply) => {
    const png = await heatmaps.png(await findCase(request.params.id, request), request.log);
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
  });

  // The image-level review of older clients: it reviews cell 0 (the whole image, or its first cell).
  app.patch('/cases/:id', { schema: schemas.reviewCase }, async (request) => {
    const { id } = request.params;
    await findCase(id, request);
    const { reviewLabel, note } = request.body;
    const reviewer = actingName(request, request.body.reviewer, 'reviewer');
    const updated = await store.addReview(id, { label: reviewLabel, reviewer, note: note ?? '' });
    if (!updated) throw notFound(id);
    await audit(request, 'review', id, `cell 0: ${reviewLabel}`);
    return caseJson(updated);
  });

  app.post('/cases/:id/cells/:index/review', { schema: schemas.reviewCell }, async (request) => {
    const { id, index } = request.params;
    checkCell(await findCase(id, request), index);
    const { reviewLabel, note } = request.body;
    const reviewer = actingName(request, request.body.reviewer, 'reviewer');
    const updated = await store.addReview(id, {
      label: reviewLabel,
      reviewer,
      note: note ?? '',
      cell: index,
    });
    if (!updated) throw notFound(id);
    await audit(request, 'review', id, `cell ${index}: ${reviewLabel}`);
    return caseJson(updated);
  });

  app.get('/cases/:id/cells/:index/crop.png', { schema: schemas.cellCrop }, async (request, reply) => {
    const c = await findCase(request.params.id, request);
    checkCell(c, request.params.index);
    const png = await crops.png(c, request.params.index);
    return reply.type('image/png').header('cache-control', 'private, max-age=86400').send(png);
  });

  // Soft: nothing is removed, the case is hidden until an admin restores it (the audit view lists deletes).
  app.delete('/cases/:id', { schema: schemas.deleteCase }, async (request, reply) => {
    const { id } = request.params;
    const reason = request.body.reason.trim();
    if (!(await store.softDelete(id, { actor: actor(request), reason }))) throw notFound(id);
    crops.forget(id);
    await audit(request, 'delete', id, reason);
    return reply.code(204).send(null);
  });

  app.post('/cases/:id/restore', { schema: schemas.restoreCase }, async (request) => {
    const { id } = request.params;
    const c = await store.get(id);
    if (!c) throw notFound(id);
    if (!c.deleted)
      throw new HematoError(`Case ${id} is not deleted: nothing to restore.`, 'not_deleted', 409);
    // Back into a deleted specimen it would be a result nobody can open from its slide: that comes first.
    if (c.specimenId && (await store.getSpecimen(c.specimenId))?.deleted)
      throw new HematoError(
        `Case ${id} belongs to specimen ${JSON.stringify(c.specimenId)}, which is deleted: restore the specimen first.`,
        'specimen_deleted',
        409,
      );
    await store.restore(id);
    await audit(request, 'restore', id, '');
    return caseJson((await store.get(id))!);
  });

  function audit(
    request: FastifyRequest,
    action: 'review' | 'delete' | 'restore',
    id: string,
    detail: string,
  ) {
    return store.accounts.audit({
      actor: actor(request),
      action,
      targetType: 'case',
      targetId: id,
      detail,
      ip: request.ip,
    });
  }
};

/** A cell index the case has (an image analysed without cells has the one cell 0: the image). */
function checkCell(c: StoredCase, index: number): void {
  const n = Math.max(1, c.cells.length);
  if (index >= n)
    throw new HematoError(
      `Case ${c.id} has ${n === 1 ? 'one cell (index 0)' : `${n} cells (indices 0 to ${n - 1})`}, not a cell ${index}.`,
      'cell_not_found',
      404,
    );
}

function contentDisposition(file: string): string {
  const ascii = file.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `inline; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(file)}`;
}
