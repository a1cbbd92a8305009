/**
 * The model a browser runs for "Analyse on this device" (the int8 model: a 5 MB download, then cached by
 * the service worker), with its card, at /models/<file> beside the UI. Absent files answer 404.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { cardPathFor } from '../../model/classifier.js';

export const DEVICE_MODEL_PREFIX = '/models/';

export const deviceModelRoutes: FastifyPluginAsync<{ modelPath: string }> = async (app, { modelPath }) => {
  const files: Record<string, { path: string; type: string }> = {
    [basename(modelPath)]: { path: modelPath, type: 'application/octet-stream' },
  };
  const card = cardPathFor(modelPath);
  files[basename(modelPath).replace(/\.onnx$/i, '.json')] = { path: card, type: 'application/json' };
  for (const [name, { path, type }] of Object.entries(files)) {
    app.get(`${DEVICE_MODEL_PREFIX}${name}`, { schema: { hide: true } }, async (_request, reply) => {
      if (!existsSync(path))
        return reply.code(404).send({ error: 'not_found', message: `${name} is not installed.` });
      // Revalidated every time (no-cache): a replaced model is never run from a stale copy; the service
      // worker keeps its own copy for offline use.
      return reply
        .type(type)
        .header('cache-control', 'no-cache')
        .send(await readFile(path));
    });
  }
};
