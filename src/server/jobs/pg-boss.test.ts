/** pg-boss on a real PostgreSQL: one replica's job, handed to another when the first stops holding it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../../testing/postgres.js';
import { PostgresCaseStore } from '../store/index.js';
import { PgBossJobQueue } from './pg-boss.js';

notePostgresSkip('jobs on PostgreSQL (pg-boss)');

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!hasPostgres)('PgBossJobQueue', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const dir = mkdtempSync(join(tmpdir(), 'hv-pgboss-'));
  const closers: (() => Promise<void>)[] = [];

  async function replica(handler: (input: unknown) => Promise<unknown>) {
    const store = await PostgresCaseStore.open({ url: db.url, tmpDir: join(dir, String(closers.length)) });
    const queue = new PgBossJobQueue(store, { url: db.url, superviseSeconds: 1, pollSeconds: 0.5 });
    queue.register('work', { expireSeconds: 30, handler: (input) => handler(input) });
    await queue.start();
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await queue.close();
      await store.close();
    };
    closers.push(close);
    return { store, queue, close };
  }

  beforeAll(async () => {
    db = await freshDatabase('jobs_pgboss');
  });
  afterAll(async () => {
    for (const c of closers) await c();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a job on one replica; when that replica stops mid-job the other takes it over and finishes it', async () => {
    const a = await replica(() => new Promise(() => undefined)); // holds whatever it takes
    const job = await a.queue.submit('work', { n: 1 });
    const held = await until(
      () => a.store.jobs.get(job.id),
      (j) => j?.state === 'running',
    );
    expect(held).toMatchObject({ owner: a.queue.owner, attempts: 1 });
    const b = await replica(async (input) => ({ doubled: (input as { n: number }).n * 2 }));
    await a.close();
    const done = await until(
      () => b.store.jobs.get(job.id),
      (j) => j?.state === 'succeeded',
    );
    expect(done).toMatchObject({ owner: b.queue.owner, attempts: 2, result: { doubled: 2 } });
    // A job submitted now runs on the remaining replica.
    const next = await b.queue.submit('work', { n: 5 });
    expect(
      await until(
        () => b.store.jobs.get(next.id),
        (j) => j?.state === 'succeeded',
      ),
    ).toMatchObject({ attempts: 1, result: { doubled: 10 } });
  }, 60_000);
});
