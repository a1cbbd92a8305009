/**
 * Exports as jobs (exports.ts): start a large CSV of cases or a specimen's PDF report (202 at once; any
 * replica makes it), follow it, download its file. The same account rules as the synchronous routes
 * (GET /cases.csv, GET /specimens/{id}/report.pdf): a clinic account exports, follows and downloads only its
 * own clinic's (another's is not found), and every download is an `export` in the audit trail, as each
 * synchronous download is.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import {
  API_BASE as API,
  CaseFilterQuery,
  ErrorReply,
  ExportJob,
  ExportParams,
  ReportQuery,
  SpecimenParams,
  type ExportJobJson,
} from '../../api/index.js';
import { ref } from '../../api/shapes.js';
import { HematoError } from '../../errors.js';
import { clinicScope, maySee } from '../auth/access.js';
import { actor } from '../auth/guard.js';
import { EXPORT_JOB_KINDS, exportKindOf, type ExportInput, type ExportResult } from '../exports.js';
import type { JobQueue } from '../jobs/index.js';
import type { CaseFilter, CaseStore, JobRow } from '../store/index.js';
import { findSpecimen } from './specimens.js';

export interface ExportRouteOptions {
  store: CaseStore;
  jobs: JobQueue;
  /** Hours a finished export is kept (export-retention.ts): named in the 404 of one swept since. */
  retentionHours: number;
}

const errors = { '4xx': ref(ErrorReply), '5xx': ref(ErrorReply) };

const exportPath = (id: string) => `${API}/exports/${encodeURIComponent(id)}`;

/** The API view of an export job: its input and result stay inside, its file is offered once it is made. */
export function exportJson(job: JobRow): ExportJobJson {
  const input = job.input as ExportInput;
  const result = job.state === 'succeeded' ? (job.result as ExportResult) : null;
  const revision = result?.revision ?? (input.kind === 'report.pdf' ? input.revision : undefined);
  return {
    id: job.id,
    kind: input.kind,
    state: job.state,
    progress: job.progress,
    stage: job.stage,
    error: job.error,
    attempts: job.attempts,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt,
    ...(input.kind === 'report.pdf' ? { specimen: input.specimen } : {}),
    ...(revision !== undefined ? { revision } : {}),
    file: result
      ? {
          url: `${exportPath(job.id)}/file`,
          name: result.name,
          contentType: result.contentType,
          bytes: result.bytes,
          sha256: result.sha256,
        }
      : null,
  };
}

const jobReply = (description: string) => ({ description, ...ExportJob });

export const exportRoutes: FastifyPluginAsyncTypebox<ExportRouteOptions> = async (
  app,
  { store, jobs, retentionHours },
) => {
  // A swept export is gone without a trace (no tombstone: the point is to keep nothing), so one 404 for both.
  const notFound = (id: string) =>
    new HematoError(
      `No export ${JSON.stringify(id)}: there never was one, or it finished more than ${retentionHours} ` +
        'hours ago and was removed with its file (EXPORT_RETENTION_HOURS); start it again.',
      'not_found',
      404,
    );

  /**
   * An export job the account may see: one of its clinic's (any for a reviewer or admin); a report's only
   * while its specimen is there to see, as the synchronous report route asks.
   */
  const findExport = async (id: string, request: FastifyRequest) => {
    const job = await store.jobs.get(id);
    if (!job || !exportKindOf(job.kind)) throw notFound(id);
    const input = job.input as ExportInput;
    if (!maySee(request.account, input)) throw notFound(id);
    if (input.kind === 'report.pdf') {
      const s = await store.getSpecimen(input.specimen);
      if (!s || s.deleted || !maySee(request.account, s)) throw notFound(id);
    }
    return { job, input };
  };

  const started = (input: ExportInput) => jobs.submit(EXPORT_JOB_KINDS[input.kind], input);

  app.post(
    '/exports/cases',
    {
      schema: {
        operationId: 'startCasesExport',
        tags: ['exports'],
        summary: 'Starts a CSV export of every matching case as a job (for exports too large to wait for)',
        description:
          'The filters of GET /cases.csv; the file is the one that route sends. Answers 202 with the job at ' +
          'once; follow it with GET /exports/{id} and download `file.url` once it succeeded.',
        querystring: CaseFilterQuery,
        response: { 202: jobReply('The export job, queued'), ...errors },
      },
    },
    async (request, reply) => {
      const clinic = clinicScope(request.account);
      const job = await started({
        kind: 'cases.csv',
        filter: { ...request.query, clinic },
        clinic: clinic ?? null,
      });
      return reply.code(202).header('location', exportPath(job.id)).send(exportJson(job));
    },
  );

  app.post(
    '/exports/specimens/:id/report',
    {
      schema: {
        operationId: 'startReportExport',
        tags: ['exports'],
        summary: 'Starts making the specimen’s PDF report as a job (for reports too large to wait for)',
        description:
          'The report GET /specimens/{id}/report.pdf sends (`revision`: that signed revision), made by a job ' +
          'any replica runs. Answers 202 at once; follow it with GET /exports/{id}.',
        params: SpecimenParams,
        querystring: ReportQuery,
        response: { 202: jobReply('The export job, queued'), ...errors },
      },
    },
    async (request, reply) => {
      const s = await findSpecimen(store, request.params.id, request);
      const { revision } = request.query;
      if (revision !== undefined && !(await store.signoffs(s.id)).some((o) => o.revision === revision))
        throw new HematoError(
          `No specimen ${JSON.stringify(request.params.id)} with a signed revision ${revision}.`,
          'not_found',
          404,
        );
      const job = await started({
        kind: 'report.pdf',
        specimen: s.id,
        ...(revision !== undefined ? { revision } : {}),
        clinic: s.clinic,
      });
      return reply.code(202).header('location', exportPath(job.id)).send(exportJson(job));
    },
  );

  app.get(
    '/exports/:id',
    {
      schema: {
        operationId: 'getExport',
        tags: ['exports'],
        summary: 'An export’s state and progress; once it succeeded, its file',
        description:
          'Kept EXPORT_RETENTION_HOURS (default 24) after it finished; then removed with its file (404).',
        params: ExportParams,
        response: { 200: jobReply('The export job'), ...errors },
      },
    },
    async (request) => exportJson((await findExport(request.params.id, request)).job),
  );

  app.get(
    '/exports/:id/file',
    {
      schema: {
        operationId: 'downloadExport',
        tags: ['exports'],
        summary: 'The file an export made (CSV or PDF)',
        description:
          '409 `export_not_ready` while the job is queued or running, `export_failed` if it failed; 404 once ' +
          'it finished more than EXPORT_RETENTION_HOURS (default 24) ago: the job and its file are removed.',
        params: ExportParams,
        response: {
          200: {
            description: 'The file, as an attachment',
            content: {
              'text/csv': { schema: { type: 'string' } },
              'application/pdf': { schema: { type: 'string', format: 'binary' } },
            },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { job, input } = await findExport(request.params.id, request);
      if (job.state === 'failed')
        throw new HematoError(`The export failed: ${job.error ?? 'no reason given'}`, 'export_failed', 409);
      if (job.state !== 'succeeded')
        throw new HematoError(
          `The export is ${job.state} (${Math.round(job.progress * 100)} %); ask again later.`,
          'export_not_ready',
          409,
        );
      const result = job.result as ExportResult;
      const bytes = await store.readExportFile(result.sha256).catch(async (err: unknown) => {
        // Swept between finding the job and reading its file: gone, as it would have been a moment later.
        if ((err as HematoError).code === 'file_missing' && !(await store.jobs.get(job.id)))
          throw notFound(request.params.id);
        throw err;
      });
      await store.accounts.audit({
        actor: actor(request),
        action: 'export',
        ...(input.kind === 'report.pdf'
          ? {
              targetType: 'specimen' as const,
              targetId: input.specimen,
              detail: `report.pdf revision ${result.revision} (export ${job.id})`,
            }
          : {
              targetType: 'cases' as const,
              targetId: 'cases.csv',
              detail: `${filterText(input.filter)} (export ${job.id})`.trim(),
            }),
        ip: request.ip,
      });
      return reply
        .type(result.contentType)
        .header('content-disposition', `attachment; filename="${result.name}"`)
        .header('cache-control', 'no-store')
        .send(bytes);
    },
  );
};

/** The filter as the synchronous route's audit entry writes its query (the clinic scope left out). */
function filterText(filter: CaseFilter): string {
  const { clinic: _clinic, ...query } = filter;
  void _clinic;
  return new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
}
