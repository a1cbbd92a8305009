/** POST /predict: analyse uploaded images and store each as a case (uploads.ts does the work). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HematoError } from '../../errors.js';
import type { RouteSchemas } from '../schemas.js';
import { predictUploads, type PredictOptions } from '../uploads.js';

export interface PredictRouteOptions extends Omit<PredictOptions, 'tta'> {
  schemas: RouteSchemas;
  /** The server's default; a request's `?tta=` overrides it. */
  tta: boolean;
}

export const predictRoutes: FastifyPluginAsyncTypebox<PredictRouteOptions> = async (app, opts) => {
  const { vision, schemas } = opts;
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
      return predictUploads(request, { ...opts, tta });
    },
  );
};

/** `?tta=true|false|1|0` on predict, else the server's default. */
function ttaQuery(query: unknown, fallback: boolean): boolean {
  const v = (query as Record<string, unknown> | undefined)?.tta;
  if (v === undefined) return fallback;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HematoError(`tta must be true or false, not "${String(v)}".`, 'invalid_request');
}
