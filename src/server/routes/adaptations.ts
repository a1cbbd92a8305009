/**
 * Admin: adaptations — start one (a job any replica runs), follow it, see its candidate beside the active
 * model. Activating the candidate is a separate, deliberate step (routes/models.ts). Its own plugin so the
 * admin guard (accounts) goes on it alone.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AdaptationJob, AdaptationRequest, type AdaptationJobJson } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import type { ModelCard } from '../../model/types.js';
import type { JobQueue } from '../jobs/index.js';
import { ADAPTATION, checkAdaptable, type AdaptationInput } from '../models/adaptation.js';
import type { ModelRegistry } from '../models/registry.js';
import type { CaseStore, JobRow } from '../store/index.js';

export interface AdaptationRouteOptions {
  store: CaseStore;
  jobs: JobQueue;
  registry: ModelRegistry;
}

const ErrorRef = Type.Ref('Error#');

/** An adaptation job as the API shows it: its result is what the job stored (server/models/adaptation.ts). */
export function jobJson(j: JobRow): AdaptationJobJson {
  const { input: _input, owner: _owner, ...shown } = j;
  void _input;
  void _owner;
  return { ...shown, result: shown.result as AdaptationJobJson['result'] };
}

export const adaptationRoutes: FastifyPluginAsyncTypebox<AdaptationRouteOptions> = async (app, o) => {
  app.post(
    '/adaptations',
    {
      schema: {
        operationId: 'startAdaptation',
        tags: ['admin'],
        summary:
          'Starts training a candidate model on the reviewed cells (a job; the active model is untouched)',
        body: Type.Optional(AdaptationRequest),
        response: { 202: AdaptationJob, 400: ErrorRef },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const base = await o.store.models.get(o.registry.active);
      if (!base) throw new HematoError('No active model version.', 'conflict', 409);
      const input: AdaptationInput = {
        baseVersion: base.version,
        minCellsPerClass: body.minCellsPerClass ?? 10,
        holdOutFraction: body.holdOutFraction ?? 0.3,
        seed: body.seed ?? 1,
      };
      await checkAdaptable(o.store, base.card as ModelCard, input.minCellsPerClass);
      const job = await o.jobs.submit(ADAPTATION, input);
      return reply.code(202).send(jobJson(job));
    },
  );

  app.get(
    '/adaptations',
    {
      schema: {
        operationId: 'listAdaptations',
        tags: ['admin'],
        summary: 'Adaptation jobs, newest first',
        response: { 200: Type.Object({ jobs: Type.Array(AdaptationJob) }) },
      },
    },
    async () => ({ jobs: (await o.store.jobs.list({ kind: ADAPTATION, limit: 50 })).map(jobJson) }),
  );

  app.get(
    '/adaptations/:id',
    {
      schema: {
        operationId: 'getAdaptation',
        tags: ['admin'],
        summary: "An adaptation's state and progress; when done, its candidate beside the active model",
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 200: AdaptationJob, 404: ErrorRef },
      },
    },
    async (request) => {
      const job = await o.store.jobs.get(request.params.id);
      if (!job || job.kind !== ADAPTATION)
        throw new HematoError(`No adaptation ${request.params.id}.`, 'not_found', 404);
      return jobJson(job);
    },
  );
};
