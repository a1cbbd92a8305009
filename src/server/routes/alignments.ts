/**
 * Admin: alignments — start one (the active model aligned to the lab's stored images, no labels; a job any
 * replica runs) and follow it. Activating the aligned version is a separate, deliberate step
 * (routes/models.ts). Its own plugin so the admin guard (accounts) goes on it alone.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AlignmentJob, AlignmentRequest, type AlignmentJobJson } from '../../api/index.js';
import { ALIGNMENT, checkAlignable, type AlignmentInput } from '../models/alignment.js';
import { activeBase, jobJson, jobReadRoutes, type AdminJobRouteOptions } from './job-routes.js';

const ErrorRef = Type.Ref('Error#');

export const alignmentRoutes: FastifyPluginAsyncTypebox<AdminJobRouteOptions> = async (app, o) => {
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
      const base = await activeBase(o);
      await checkAlignable(o.store);
      const input: AlignmentInput = { baseVersion: base.version, images: request.body?.images ?? 500 };
      const job = await o.jobs.submit(ALIGNMENT, input);
      return reply.code(202).send(jobJson<AlignmentJobJson['result']>(job));
    },
  );

  jobReadRoutes(app, o.store, {
    kind: ALIGNMENT,
    path: 'alignments',
    schema: AlignmentJob,
    what: 'alignment',
    list: { operationId: 'listAlignments', summary: 'Alignment jobs, newest first' },
    get: {
      operationId: 'getAlignment',
      summary: "An alignment's state and progress; when done, the aligned version it stored",
    },
  });
};
