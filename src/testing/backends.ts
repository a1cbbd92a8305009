/**
 * Route tests run once per case-store backend: on SQLite, and again on PostgreSQL when a test server answers
 * (HV_TEST_DATABASE_URL). A file runs `describe.each(BACKENDS)`, calls `databasePerDescribe` in it, and builds
 * each test's app on `databaseUrl` after `emptyDatabase()` (ES module exports are live bindings, so the
 * importing file sees the running describe's URL).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { buildApp, type AppOptions } from '../server/app.js';
import { freshDatabase, hasPostgres } from './postgres.js';
import { fakeVision } from './server.js';

export const BACKENDS = [
  { name: 'SQLite', postgres: false },
  ...(hasPostgres ? [{ name: 'PostgreSQL', postgres: true }] : []),
];

/** The PostgreSQL database of the running describe, or undefined on SQLite. */
export let databaseUrl: string | undefined;

/** In a describe run per backend: on PostgreSQL, a database of its own, made before its tests and dropped after. */
export function databasePerDescribe(postgres: boolean, prefix: string): void {
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  beforeAll(async () => {
    db = postgres ? await freshDatabase(prefix) : undefined;
    databaseUrl = db?.url;
  });
  afterAll(async () => {
    databaseUrl = undefined;
    await db?.drop();
  });
}

/**
 * Empties the running describe's database (nothing on SQLite): each test starts from an empty database, as
 * each starts from an empty data folder on SQLite.
 */
export async function emptyDatabase(): Promise<void> {
  if (!databaseUrl) return;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  } finally {
    await client.end();
  }
}

/**
 * Replicas of the server on one shared PostgreSQL database, each with its own (empty) data folder for upload
 * temp files; `dirs` lists those folders in start order.
 */
export class Replicas {
  readonly dirs: string[] = [];
  private readonly apps: FastifyInstance[] = [];

  constructor(
    private readonly databaseUrl: () => string,
    private readonly prefix: string,
  ) {}

  async start(options: Partial<AppOptions> = {}): Promise<FastifyInstance> {
    const dataDir = mkdtempSync(join(tmpdir(), this.prefix));
    this.dirs.push(dataDir);
    const app = await buildApp({
      vision: fakeVision(),
      dataDir,
      databaseUrl: this.databaseUrl(),
      webDir: join(dataDir, 'no-web'),
      ...options,
    });
    this.apps.push(app);
    return app;
  }

  /** Closes the replicas started so far. */
  async close(): Promise<void> {
    while (this.apps.length > 0) await this.apps.pop()!.close();
  }

  /** Closes them and removes their data folders. */
  async remove(): Promise<void> {
    await this.close();
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}
