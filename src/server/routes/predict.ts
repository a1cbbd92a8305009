/** POST /predict: analyse uploaded images and store each as a case (uploads.ts does the work). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { HematoError } from '../../errors.js';
import { actor } from '../auth/guard.js';
import type { RouteSchemas } from '../schemas.js';
import type { CaseStore } from '../store/index.js';
import { Gate } from '../gate.js';
import { predictUploads, type PredictOptions } from '../uploads.js';
import { findSpecimen } from './specimens.js';

export interface PredictRouteOptions extends Omit<
  PredictOptions,
  'tta' | 'specimenId' | 'clinic' | 'ttaGate'
> {
  schemas: RouteSchemas;
  /** The server's default; a request's `?tta=` overrides it. */
  tta: boolean;
}

export const predictRoutes: FastifyPluginAsyncTypebox<PredictRouteOptions> = async (app, opts) => {
  const { vision, schemas } = opts;
  const ttaGate = new Gate(1);
  app.post(
    '/predict',
    {
      schema: schemas.predict,
      // The multipart body is streamed to disk, not parsed into request.body: its schema documents the
      // API and the handler enforces it (field name, 1..maxFiles files).
      validatorCompiler: () => () => true,
    },
    async (request) => {
      // Checked before the upload is read: the route's validator is off for the multipart body.
      const tta = ttaQuery(request.query, opts.tta);
      if (tta && !vision.hasTta)
        throw new HematoError(
          `Model ${vision.card.name} ${vision.card.version} is not calibrated for test-time augmentation.`,
          'no_tta',
        );
      const specimen = await specimenQuery(request, opts.store);
      const clinic = request.account?.role === 'clinic' ? request.account.clinic : null;
      const reply = await predictUploads(request, { ...opts, tta, specimenId: specimen, clinic, ttaGate });
      for (const item of reply.cases)
        if ('id' in item)
          await opts.store.accounts.audit({
            actor: actor(request),
            action: 'create',
            targetType: 'case',
            targetId: item.id,
            detail: specimen ? `specimen ${specimen}` : '',
            ip: request.ip,
          });
      return reply;
    },
  );
};

/**
 * `?specimen=<id>`: the specimen's stored id, checked before the upload is read (an unknown one stores
 * nothing). The query's other parameters are refused by name: a misspelt one must not be ignored.
 */
async function specimenQuery(request: FastifyRequest, store: CaseStore): Promise<string | undefined> {
  const q = (request.query ?? {}) as Record<string, unknown>;
  const unknown = Object.keys(q).find((k) => k !== 'tta' && k !== 'specimen');
  if (unknown) throw new HematoError(`Unknown query parameter '${unknown}'.`, 'invalid_request');
  const v = q.specimen;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !v.trim())
    throw new HematoError('specimen must be a specimen id, once.', 'invalid_request');
  return (await findSpecimen(store, v, request)).id;
}

/** `?tta=true|false|1|0` on predict, else the server's default. */
function ttaQuery(query: unknown, fallback: boolean): boolean {
  const v = (query as Record<string, unknown> | undefined)?.tta;
  if (v === undefined) return fallback;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HematoError(`tta must be true or false, not "${String(v)}".`, 'invalid_request');
}
