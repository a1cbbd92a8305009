/**
 * Admin: model versions — list them, activate one, roll back (undo the last activation). Its own plugin so
 * the admin guard (accounts) goes on it alone.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ModelVersionJson, ModelVersionList } from '../../api/index.js';
import type { ModelCard } from '../../model/types.js';
import type { ModelRegistry } from '../models/registry.js';
import type { ModelVersion } from '../store/index.js';

export interface ModelRouteOptions {
  registry: ModelRegistry;
}

const ErrorRef = Type.Ref('Error#');

export function versionJson(m: ModelVersion, active: number) {
  const card = m.card as ModelCard;
  return {
    version: m.version,
    sha256: m.sha256,
    name: m.name,
    cardVersion: card.version,
    source: m.source,
    jobId: m.jobId,
    createdAt: m.createdAt,
    active: m.version === active,
    classes: card.classes,
    card: m.card,
  };
}

export const modelRoutes: FastifyPluginAsyncTypebox<ModelRouteOptions> = async (app, { registry }) => {
  app.get(
    '/admin/models',
    {
      schema: {
        operationId: 'listModelVersions',
        tags: ['admin'],
        summary: 'Model versions, the active one, and the activation log',
        response: { 200: ModelVersionList },
      },
    },
    async () => {
      const { versions, activations, rollbackTo } = await registry.list();
      const active = registry.active;
      return { active, versions: versions.map((m) => versionJson(m, active)), activations, rollbackTo };
    },
  );

  app.post(
    '/admin/models/:version/activate',
    {
      schema: {
        operationId: 'activateModelVersion',
        tags: ['admin'],
        summary: 'Makes a stored version the active model (every replica follows; no restart)',
        params: Type.Object({ version: Type.Integer({ minimum: 1 }) }),
        response: { 200: ModelVersionJson, 404: ErrorRef, 409: ErrorRef },
      },
    },
    async (request) => {
      const m = await registry.activate(request.params.version);
      return versionJson(m, registry.active);
    },
  );

  app.post(
    '/admin/models/rollback',
    {
      schema: {
        operationId: 'rollBackModel',
        tags: ['admin'],
        summary:
          'Undoes the last activation: activates the version active before the current one, skipping versions ' +
          'already rolled back from; 409 when there is nothing left to roll back to',
        response: { 200: ModelVersionJson, 409: ErrorRef },
      },
    },
    async () => {
      const m = await registry.rollback();
      return versionJson(m, registry.active);
    },
  );
};
