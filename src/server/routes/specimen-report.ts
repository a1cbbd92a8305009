/**
 * GET {prefix}/specimens/:id/report.pdf as a Fastify plugin: the specimen's PDF report
 * (src/report/specimen-pdf.ts). The specimens feature owns the data, so it passes `load`, which gives a
 * signed revision's frozen bytes, or the SpecimenReport to render as the specimen is now, or null for an
 * unknown specimen or revision; and `render`, which makes a report's PDF (the server's renders in a worker
 * thread: src/report/render-thread.ts).
 *
 *   await app.register(specimenReportRoutes, { prefix: '/api/v1', load: (id, revision) => …, render });
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { ErrorReply, ReportQuery, SpecimenParams } from '../../api/index.js';
import { ref } from '../../api/shapes.js';
import type { SpecimenReport } from '../../report/specimen-pdf.js';

export type ReportName = Pick<SpecimenReport, 'specimenId' | 'revision' | 'signedAt' | 'reviewer'>;

/** What a report request gets: a signed revision's PDF as it was signed, or a report to render now. */
export type ReportSource = { report: SpecimenReport } | { frozen: Buffer; name: ReportName };

export interface SpecimenReportRoutesOptions {
  /** `request`: who asks (the loader decides whether they may see the specimen). */
  load(
    id: string,
    revision: number | undefined,
    request: FastifyRequest,
  ): Promise<ReportSource | null> | ReportSource | null;
  /** The report's PDF bytes (renderSpecimenPdf's, made off the event loop by the server). */
  render(report: SpecimenReport): Promise<Buffer>;
}

/** A file name any browser and file system accepts: the id's letters, digits, dots, dashes and underscores. */
export function reportFileName(report: ReportName) {
  const id = report.specimenId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'specimen';
  const draft = report.signedAt && report.reviewer ? '' : '-draft';
  return `hematovision-${id}-r${report.revision}${draft}.pdf`;
}

/** The PDF of a report source and the name it goes by: a signed revision's frozen bytes, or rendered now. */
export async function reportPdf(
  source: ReportSource,
  render: (report: SpecimenReport) => Promise<Buffer>,
): Promise<{ pdf: Buffer; name: ReportName }> {
  return 'frozen' in source
    ? { pdf: source.frozen, name: source.name }
    : { pdf: await render(source.report), name: source.report };
}

export const specimenReportRoutes: FastifyPluginAsyncTypebox<SpecimenReportRoutesOptions> = async (
  app,
  options,
) => {
  app.get(
    '/specimens/:id/report.pdf',
    {
      schema: {
        operationId: 'specimenReport',
        tags: ['specimens'],
        summary: 'The specimen’s PDF report: differential, flagged or corrected cells, model, sign-off',
        description:
          'Without `revision`: the report as the specimen is now (the signed PDF, unchanged, while nothing ' +
          'changed since the last sign-off; else a draft of the next revision). With `revision`: that signed ' +
          'revision exactly as it was signed.',
        params: SpecimenParams,
        querystring: ReportQuery,
        response: {
          200: {
            description: 'PDF',
            content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } },
          },
          '4xx': ref(ErrorReply),
          '5xx': ref(ErrorReply),
        },
      },
    },
    async (request, reply) => {
      const { revision } = request.query;
      const source = await options.load(request.params.id, revision, request);
      if (!source)
        return reply.code(404).send({
          error: 'not_found',
          message:
            `No specimen ${JSON.stringify(request.params.id)}` +
            (revision !== undefined ? ` with a signed revision ${revision}.` : '.'),
        });
      const { pdf, name } = await reportPdf(source, options.render);
      return reply
        .type('application/pdf')
        .header('content-disposition', `attachment; filename="${reportFileName(name)}"`)
        .header('cache-control', 'no-store')
        .send(pdf);
    },
  );
};
