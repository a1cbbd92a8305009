/** GET /ready: can this server take work now — database writable, disk space left, model loaded. */
import { statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ReadyJson } from '../../api/index.js';
import type { HematoVision } from '../../pipeline.js';
import type { RouteSchemas } from '../schemas.js';
import type { CaseStore } from '../store/index.js';

export interface ReadyRouteOptions {
  store: CaseStore;
  vision: HematoVision;
  schemas: RouteSchemas;
  dataDir: string;
  /** Below this many free bytes in dataDir the server is not ready (uploads would fail half-way). */
  minFreeBytes: number;
}

export const readyRoutes: FastifyPluginAsyncTypebox<ReadyRouteOptions> = async (app, opts) => {
  app.get('/ready', { schema: opts.schemas.ready }, async (_request, reply) => {
    const body = await readiness(opts);
    return reply.code(body.status === 'ready' ? 200 : 503).send(body);
  });
};

export async function readiness(opts: Omit<ReadyRouteOptions, 'schemas'>): Promise<ReadyJson> {
  const [database, disk] = await Promise.all([databaseCheck(opts.store), diskCheck(opts)]);
  // The pipeline is built before the server starts and closed only when it stops: present means loaded.
  const model = { ok: Boolean(opts.vision.card) };
  const ok = database.ok && disk.ok && model.ok;
  return { status: ok ? 'ready' : 'not_ready', checks: { database, disk, model } };
}

async function databaseCheck(store: CaseStore): Promise<{ ok: boolean; message?: string }> {
  try {
    await store.checkWritable?.();
    // The upload temp folder too: each image passes through it before it is stored.
    const probe = join(store.tmpDir, `.ready-${process.pid}`);
    await writeFile(probe, 'ok', { mode: 0o600 });
    await unlink(probe);
    return { ok: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, message: `Cannot write${code ? ` (${code})` : ''}.` };
  }
}

async function diskCheck(opts: { dataDir: string; minFreeBytes: number }) {
  const { minFreeBytes } = opts;
  try {
    const s = await statfs(opts.dataDir);
    const freeBytes = s.bavail * s.bsize;
    return freeBytes >= minFreeBytes
      ? { ok: true, freeBytes, minFreeBytes }
      : {
          ok: false,
          freeBytes,
          minFreeBytes,
          message: 'Free disk space in the data folder is below the threshold.',
        };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, minFreeBytes, message: `Free space could not be read (${code}).` };
  }
}
