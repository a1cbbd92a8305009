/**
 * GET {prefix}/specimens/:id/report.pdf as a Fastify plugin: the specimen's PDF report
 * (src/report/specimen-pdf.ts). The specimens feature owns the data, so it passes `load`, which gathers one
 * specimen's SpecimenReport (counts with reviewers' corrections, flagged or corrected cells with their crops,
 * the model, the sign-off) or returns null for an unknown id.
 *
 *   await app.register(specimenReportRoutes, { prefix: '/api/v1', load: (id) => … });
 */
import type { FastifyPluginAsync } from 'fastify';
import { renderSpecimenPdf, type SpecimenReport } from '../../report/specimen-pdf.js';

export interface SpecimenReportRoutesOptions {
  load(id: string): Promise<SpecimenReport | null> | SpecimenReport | null;
}

/** A file name any browser and file system accepts: the id's letters, digits, dots, dashes and underscores. */
export function reportFileName(
  report: Pick<SpecimenReport, 'specimenId' | 'revision' | 'signedAt' | 'reviewer'>,
) {
  const id = report.specimenId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'specimen';
  const draft = report.signedAt && report.reviewer ? '' : '-draft';
  return `hematovision-${id}-r${report.revision}${draft}.pdf`;
}

export const specimenReportRoutes: FastifyPluginAsync<SpecimenReportRoutesOptions> = async (app, options) => {
  app.get<{ Params: { id: string } }>(
    '/specimens/:id/report.pdf',
    {
      schema: {
        tags: ['specimens'],
        summary: 'The specimen’s PDF report: differential, flagged or corrected cells, model, sign-off',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } },
        response: {
          200: { type: 'string', format: 'binary' },
          404: {
            type: 'object',
            required: ['error', 'message'],
            properties: { error: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
    async (request, reply) => {
      const report = await options.load(request.params.id);
      if (!report)
        return reply
          .code(404)
          .send({ error: 'not_found', message: `No specimen ${JSON.stringify(request.params.id)}.` });
      const pdf = await renderSpecimenPdf(report);
      return reply
        .type('application/pdf')
        .header('content-disposition', `attachment; filename="${reportFileName(report)}"`)
        .header('cache-control', 'no-store')
        .send(pdf);
    },
  );
};
