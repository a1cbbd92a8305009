/**
 * Admin: alignments — start one (the active model aligned to the lab's stored images, no labels; a job any
 * replica runs) and follow it. Activating the aligned version is a separate, deliberate step
 * (routes/models.ts). Its own plugin so the admin guard (accounts) goes on it alone.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AlignmentJob, AlignmentRequest, type AlignmentJobJson } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import type { JobQueue } from '../jobs/index.js';
import { ALIGNMENT, checkAlignable, type AlignmentInput } from '../models/alignment.js';
import type { ModelRegistry } from '../models/registry.js';
import type { CaseStore, JobRow } from '../store/index.js';

export interface AlignmentRouteOptions {
  store: CaseStore;
  jobs: JobQueue;
  registry: ModelRegistry;
}

const ErrorRef = Type.Ref('Error#');

/** An alignment job as the API shows it: its result is what the job stored (server/models/alignment.ts). */
function jobJson(j: JobRow): AlignmentJobJson {
  const { input: _input, owner: _owner, ...shown } = j;
  void _input;
  void _owner;
  return { ...shown, result: shown.result as AlignmentJobJson['result'] };
}

export const alignmentRoutes: FastifyPluginAsyncTypebox<AlignmentRouteOptions> = async (app, o) => {
  app.post(
    '/alignments',
    {
      schema: {
        operationId: 'startAlignment',
        tags: ['admin'],
        summary:
          "Starts aligning the active model to this lab's stored images, without labels (a job; the result is " +
          'a new model version, not activated)',
        body: Type.Optional(AlignmentRequest),
        response: { 202: AlignmentJob, 400: ErrorRef, 409: ErrorRef },
      },
    },
    async (request, reply) => {
      const base = await o.store.models.get(o.registry.active);
      if (!base) throw new HematoError('No active model version.', 'conflict', 409);
      await checkAlignable(o.store);
      const input: AlignmentInput = { baseVersion: base.version, images: request.body?.images ?? 500 };
      const job = await o.jobs.submit(ALIGNMENT, input);
      return reply.code(202).send(jobJson(job));
    },
  );

  app.get(
    '/alignments',
    {
      schema: {
        operationId: 'listAlignments',
        tags: ['admin'],
        summary: 'Alignment jobs, newest first',
        response: { 200: Type.Object({ jobs: Type.Array(AlignmentJob) }) },
      },
    },
    async () => ({ jobs: (await o.store.jobs.list({ kind: ALIGNMENT, limit: 50 })).map(jobJson) }),
  );

  app.get(
    '/alignments/:id',
    {
      schema: {
        operationId: 'getAlignment',
        tags: ['admin'],
        summary: "An alignment's state and progress; when done, the aligned version it stored",
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 200: AlignmentJob, 404: ErrorRef },
      },
    },
    async (request) => {
      const job = await o.store.jobs.get(request.params.id);
      if (!job || job.kind !== ALIGNMENT)
        throw new HematoError(`No alignment ${request.params.id}.`, 'not_found', 404);
      return jobJson(job);
    },
  );
};
