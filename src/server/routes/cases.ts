/** The stored cases: list, CSV export, one case, its image and heat map, review, delete. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { LIST_DEFAULTS } from '../../api/index.js';
import type { HematoVision } from '../../pipeline.js';
import { caseJson } from '../case-json.js';
import { casesCsv } from '../cases-csv.js';
import { HeatmapRenderer } from '../heatmaps.js';
import { notFound } from '../http-errors.js';
import type { RouteSchemas } from '../schemas.js';
import type { CaseStore, StoredCase } from '../store/index.js';

export interface CaseRouteOptions {
  store: CaseStore;
  vision: HematoVision;
  schemas: RouteSchemas;
}

/** Request types come from the route schemas (src/api) through the TypeBox type provider. */
export const caseRoutes: FastifyPluginAsyncTypebox<CaseRouteOptions> = async (
  app,
  { store, vision, schemas },
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
      .send(await casesCsv(store, vision.card.classes, request.query)),
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

  app.delete('/cases/:id', { schema: schemas.deleteCase }, async (request, reply) => {
    if (!(await store.delete(request.params.id))) throw notFound(request.params.id);
    return reply.code(204).send(null);
  });
};

function contentDisposition(file: string): string {
  const ascii = file.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `inline; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(file)}`;
}
