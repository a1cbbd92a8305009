/** The service routes: liveness, the model card in use, the OpenAPI document. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { HematoVision } from '../../pipeline.js';
import type { RouteSchemas } from '../schemas.js';

export interface ServiceRouteOptions {
  vision: HematoVision;
  schemas: RouteSchemas;
  tta: boolean;
}

export const serviceRoutes: FastifyPluginAsyncTypebox<ServiceRouteOptions> = async (
  app,
  { vision, schemas, tta },
) => {
  const classes = vision.card.classes;
  app.get('/health', { schema: schemas.health }, async () => ({
    status: 'ok' as const,
    model: { name: vision.card.name, version: vision.card.version, classes, tta: vision.hasTta },
  }));

  // The card, and how this server runs it: test-time augmentation or not, and the review threshold for that.
  app.get('/model', { schema: schemas.model }, async () => ({
    ...vision.card,
    inUse: { tta, reviewThreshold: vision.reviewThreshold(tta) },
  }));

  app.get('/openapi.json', { schema: schemas.openapi }, async () => app.swagger());
};
