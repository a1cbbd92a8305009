/**
 * What the admin's job routes (adaptations, alignments) share: a job row as the API shows it, and reading the
 * jobs of one kind (the list, newest first, and one by id).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import { HematoError } from '../../errors.js';
import type { JobQueue } from '../jobs/index.js';
import type { ModelRegistry } from '../models/registry.js';
import type { CaseStore, JobRow, ModelVersion } from '../store/index.js';

type App = Parameters<FastifyPluginAsyncTypebox>[0];

const ErrorRef = Type.Ref('Error#');

/** What an admin job kind's routes need: where jobs and versions are stored, the queue, the active model. */
export interface AdminJobRouteOptions {
  store: CaseStore;
  jobs: JobQueue;
  registry: ModelRegistry;
}

/** The stored active version a new job starts from; 409 when there is none. */
export async function activeBase(o: AdminJobRouteOptions): Promise<ModelVersion> {
  const base = await o.store.models.get(o.registry.active);
  if (!base) throw new HematoError('No active model version.', 'conflict', 409);
  return base;
}

/** A job as the API shows it (neither its input nor the replica holding it): its result is what the job stored. */
export function jobJson<Result>(j: JobRow): Omit<JobRow, 'input' | 'owner' | 'result'> & { result: Result } {
  const { input: _input, owner: _owner, ...shown } = j;
  void _input;
  void _owner;
  return { ...shown, result: shown.result as Result };
}

/** GET /<path> (the latest 50 jobs of `kind`, newest first) and GET /<path>/:id (404 for a job of another kind). */
export function jobReadRoutes(
  app: App,
  store: CaseStore,
  o: {
    kind: string;
    path: string;
    /** The API's shape of one job of this kind. */
    schema: TSchema;
    /** The job in a 404's message ("No adaptation <id>."). */
    what: string;
    list: { operationId: string; summary: string };
    get: { operationId: string; summary: string };
  },
): void {
  app.get(
    `/${o.path}`,
    {
      schema: {
        operationId: o.list.operationId,
        tags: ['admin'],
        summary: o.list.summary,
        response: { 200: Type.Object({ jobs: Type.Array(o.schema) }) },
      },
    },
    async () => ({ jobs: (await store.jobs.list({ kind: o.kind, limit: 50 })).map((j) => jobJson(j)) }),
  );

  app.get(
    `/${o.path}/:id`,
    {
      schema: {
        operationId: o.get.operationId,
        tags: ['admin'],
        summary: o.get.summary,
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 200: o.schema, 404: ErrorRef },
      },
    },
    async (request) => {
      const job = await store.jobs.get(request.params.id);
      if (!job || job.kind !== o.kind)
        throw new HematoError(`No ${o.what} ${request.params.id}.`, 'not_found', 404);
      return jobJson(job);
    },
  );
}
