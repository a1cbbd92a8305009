/**
 * Admin: adaptations — start one (a job any replica runs), follow it, see its candidate beside the active
 * model. Activating the candidate is a separate, deliberate step (routes/models.ts). Its own plugin so the
 * admin guard (accounts) goes on it alone.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AdaptationJob, AdaptationRequest, type AdaptationJobJson } from '../../api/index.js';
import type { ModelCard } from '../../model/types.js';
import { ADAPTATION, checkAdaptable, type AdaptationInput } from '../models/adaptation.js';
import { activeBase, jobJson, jobReadRoutes, type AdminJobRouteOptions } from './job-routes.js';

const ErrorRef = Type.Ref('Error#');

export const adaptationRoutes: FastifyPluginAsyncTypebox<AdminJobRouteOptions> = async (app, o) => {
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
      const base = await activeBase(o);
      const input: AdaptationInput = {
        baseVersion: base.version,
        minCellsPerClass: body.minCellsPerClass ?? 10,
        holdOutFraction: body.holdOutFraction ?? 0.3,
        seed: body.seed ?? 1,
      };
      await checkAdaptable(o.store, base.card as ModelCard, input.minCellsPerClass);
      const job = await o.jobs.submit(ADAPTATION, input);
      return reply.code(202).send(jobJson<AdaptationJobJson['result']>(job));
    },
  );

  jobReadRoutes(app, o.store, {
    kind: ADAPTATION,
    path: 'adaptations',
    schema: AdaptationJob,
    what: 'adaptation',
    list: { operationId: 'listAdaptations', summary: 'Adaptation jobs, newest first' },
    get: {
      operationId: 'getAdaptation',
      summary: "An adaptation's state and progress; when done, its candidate beside the active model",
    },
  });
};
