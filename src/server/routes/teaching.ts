/**
 * The bundled teaching set (teaching/ at the repository root) as a Fastify plugin: practice mode asks these
 * expert-labelled PBC cells on a fresh install, before any case has been reviewed.
 *
 *   GET {prefix}/teaching            the cells (id, label, image URL) with the dataset's source and licence
 *   GET {prefix}/teaching/:id/image  one cell's JPEG
 *
 * Register with `app.register(teachingRoutes, { prefix: '/api/v1' })`. It needs nothing from the case store
 * or the model, so it works on an empty data folder.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TeachingCellParams, TeachingError, TeachingSet } from '../../api/index.js';
import { loadTeachingSet, TEACHING_DIR, type TeachingManifest } from '../../teaching/manifest.js';

export interface TeachingRoutesOptions {
  /** Folder holding manifest.json and images/ (default: the repository's teaching/). */
  dir?: string;
}

export const teachingRoutes: FastifyPluginAsyncTypebox<TeachingRoutesOptions> = async (app, options) => {
  const dir = options.dir ?? TEACHING_DIR;
  // A missing or damaged set is a packaging fault: the server still starts and practice falls back to the
  // teacher's reviewed cases, and the list says why it is empty.
  let manifest: TeachingManifest | null = null;
  let problem = '';
  try {
    manifest = loadTeachingSet(dir);
  } catch (err) {
    problem = (err as Error).message;
    app.log.warn({ dir }, `teaching set not served: ${problem}`);
  }
  const byId = new Map((manifest?.cells ?? []).map((c) => [c.id, c]));
  const base = app.prefix;

  app.get(
    '/teaching',
    {
      schema: {
        operationId: 'listTeachingCells',
        tags: ['teaching'],
        summary: 'Expert-labelled cells for practice mode (the bundled PBC teaching set)',
        response: { 200: TeachingSet, '4xx': TeachingError },
      },
    },
    async () => ({
      source: manifest?.source ?? '',
      license: manifest?.license ?? '',
      modified: manifest?.modified ?? '',
      ...(problem ? { message: `The teaching set is unavailable: ${problem}` } : {}),
      cells: (manifest?.cells ?? []).map((c) => ({
        id: c.id,
        label: c.label,
        ...(c.subtype ? { subtype: c.subtype } : {}),
        sourceFile: c.sourceFile,
        imageUrl: `${base}/teaching/${c.id}/image`,
        width: c.width,
        height: c.height,
      })),
    }),
  );

  app.get(
    '/teaching/:id/image',
    {
      schema: {
        operationId: 'getTeachingCellImage',
        tags: ['teaching'],
        summary: 'One teaching cell’s image (JPEG)',
        params: TeachingCellParams,
        response: { 200: { type: 'string', format: 'binary' }, 404: TeachingError },
      },
    },
    async (request, reply) => {
      const cell = byId.get(request.params.id);
      if (!cell)
        return reply
          .code(404)
          .send({ error: 'not_found', message: `No teaching cell ${JSON.stringify(request.params.id)}.` });
      // The id was found in the checked manifest, so the path stays inside the teaching folder.
      const bytes = await readFile(join(dir, cell.file));
      return reply.type('image/jpeg').header('cache-control', 'public, max-age=86400').send(bytes);
    },
  );
};
