/** The stored cases: list, CSV export, one case, its image and heat map, review, delete. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { LIST_DEFAULTS } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import type { HematoVision } from '../../pipeline.js';
import { caseJson } from '../case-json.js';
import { casesCsvStream } from '../cases-csv.js';
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
}

/** Request types come from the route schemas (src/api) through the TypeBox type provider. */
export const caseRoutes: FastifyPluginAsyncTypebox<CaseRouteOptions> = async (
  app,
  { store, vision, schemas, crops },
) => {
  const heatmaps = new HeatmapRenderer(store, vision);
  const findCase = async (id: string): Promise<StoredCase> => {
    const c = await store.get(id);
    if (!c) throw notFound(id);
    return c;
  };

  app.get('/cases', { schema: schemas.listCases }, async (request) => {
    // Validation fills in the defaults already; the type cannot know.
    const { limit = LIST_DEFAULTS.limit, offset = LIST_DEFAULTS.offset, ...filter } = request.query;
    const { cases, total } = await store.list({ ...filter, limit, offset });
    return { cases: cases.map(caseJson), total };
  });

  app.get('/cases.csv', { schema: schemas.casesCsv }, async (request, reply) =>
    reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', 'attachment; filename="hematovision-cases.csv"')
      .send(await casesCsvStream(store, vision.card.classes, request.query)),
  );

  app.get('/cases/:id', { schema: schemas.getCase }, async (request) => {
    const c = await findCase(request.params.id);
    return { ...caseJson(c), reviews: await store.reviews(c.id) };
  });

  app.get('/cases/:id/image', { schema: schemas.caseImage }, async (request, reply) => {
    const c = await findCase(request.params.id);
    const bytes = await store.readImage(c);
    return reply
      .type(c.imageType)
      .header('content-disposition', contentDisposition(c.file))
      .header('cache-control', 'private, max-age=3600')
      .send(bytes);
  });

  app.get('/cases/:id/heatmap.png', { schema: schemas.caseHeatmap }, async (request, reply) => {
    const png = await heatmaps.png(await findCase(request.params.id), request.log);
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
  });

  // The image-level review of older clients: it reviews cell 0 (the whole image, or its first cell).
  app.patch('/cases/:id', { schema: schemas.reviewCase }, async (request) => {
    const { reviewLabel, reviewer, note } = request.body;
    const updated = await store.addReview(request.params.id, {
      label: reviewLabel,
      reviewer: reviewer.trim(),
      note: note ?? '',
    });
    if (!updated) throw notFound(request.params.id);
    return caseJson(updated);
  });

  app.post('/cases/:id/cells/:index/review', { schema: schemas.reviewCell }, async (request) => {
    const { id, index } = request.params;
    checkCell(await findCase(id), index);
    const { reviewLabel, reviewer, note } = request.body;
    const updated = await store.addReview(id, {
      label: reviewLabel,
      reviewer: reviewer.trim(),
      note: note ?? '',
      cell: index,
    });
    if (!updated) throw notFound(id);
    return caseJson(updated);
  });

  app.get('/cases/:id/cells/:index/crop.png', { schema: schemas.cellCrop }, async (request, reply) => {
    const c = await findCase(request.params.id);
    checkCell(c, request.params.index);
    const png = await crops.png(c, request.params.index);
    return reply.type('image/png').header('cache-control', 'private, max-age=86400').send(png);
  });

  app.delete('/cases/:id', { schema: schemas.deleteCase }, async (request, reply) => {
    if (!(await store.delete(request.params.id))) throw notFound(request.params.id);
    crops.forget(request.params.id);
    return reply.code(204).send(null);
  });
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
