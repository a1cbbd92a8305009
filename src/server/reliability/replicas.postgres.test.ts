/**
 * Two server processes (main.ts) on one PostgreSQL: 16 clients spread over both, `kill -9` of the replica
 * holding an adaptation job mid-load; the other replica completes the job, and every case either replica
 * acknowledged is readable, image and all, from the survivor. And a report export held by a replica that died
 * is made by another.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../../testing/postgres.js';
import { seedReviewedCells, teachingCells, type Send } from '../../testing/reviewed.js';
import { killHard, startServerProcess, type ServerProcess } from '../../testing/server-process.js';
import { multipart } from '../../testing/server.js';
import { EXPORT_JOB_KINDS } from '../exports.js';
import { PostgresCaseStore } from '../store/index.js';

notePostgresSkip('two replicas and a job on PostgreSQL');

interface Replica {
  child: ServerProcess['child'];
  base: string;
  send: Send;
}

const dirs: string[] = [];
const servers: ServerProcess[] = [];
afterAll(async () => {
  for (const s of servers) await killHard(s);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts main.ts on the database (`env` adds to or overrides its settings); resolves once it listens. */
async function replica(url: string, env: Record<string, string> = {}): Promise<Replica> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hv-replica-'));
  dirs.push(dataDir);
  const server = startServerProcess(dataDir, {
    DATABASE_URL: url,
    RATE_LIMIT: '0',
    // Short enough for a test: pg-boss looks for expired jobs every second, and an adaptation held by a
    // dead replica is given to another once ADAPTATION_LIMIT_SECONDS have passed. Not shorter: on a loaded
    // 2-core machine the adaptation itself, under the clients' predicts, came within seconds of 40.
    JOBS_SUPERVISE_SECONDS: '1',
    JOBS_POLL_SECONDS: '0.5',
    ADAPTATION_LIMIT_SECONDS: '60',
    ...env,
  });
  servers.push(server);
  const base = `http://127.0.0.1:${await server.port()}`;
  const send: Send = async (req) => {
    const res = await fetch(base + req.url, {
      method: req.method,
      headers: req.headers,
      body: req.payload === undefined ? undefined : new Uint8Array(Buffer.from(req.payload)),
    });
    const text = await res.text();
    return { statusCode: res.status, json: () => JSON.parse(text) as unknown };
  };
  return { child: server.child, base, send };
}

describe.skipIf(!hasPostgres)('jobs any replica can run', () => {
  it('kill -9 of the replica holding a job mid-load: the other completes it, no acknowledged case is lost', async () => {
    const db = await freshDatabase('jobs_kill');
    const admin = new pg.Client({ connectionString: db.url });
    try {
      const replicas = [await replica(db.url), await replica(db.url)];
      await seedReviewedCells(replicas[0].send, teachingCells(10));
      const started = await replicas[1].send({
        method: 'POST',
        url: '/api/v1/adaptations',
        payload: JSON.stringify({ minCellsPerClass: 5 }),
        headers: { 'content-type': 'application/json' },
      });
      expect(started.statusCode).toBe(202);
      const jobId = (started.json() as { id: string }).id;

      // 16 clients, spread over both replicas, predicting until told to stop.
      const acknowledged: string[] = [];
      let load = true;
      const [one] = teachingCells(1);
      const client = async (i: number) => {
        while (load) {
          const r = replicas[i % 2];
          const body = await multipart([{ name: `c${i}.jpg`, bytes: one.bytes }]);
          const res = await r.send({ method: 'POST', url: '/api/v1/predict', ...body }).catch(() => null);
          if (res?.statusCode === 200)
            acknowledged.push((res.json() as { cases: { id: string }[] }).cases[0].id);
          else await new Promise((w) => setTimeout(w, 50));
        }
      };
      const clients = Array.from({ length: 16 }, (_, i) => client(i));

      // Which replica holds it: the job row's owner names the process.
      await admin.connect();
      let owner = '';
      for (let t = Date.now(); Date.now() - t < 60_000 && !owner;) {
        const { rows } = await admin.query<{ owner: string | null; state: string }>(
          'SELECT owner, state FROM jobs WHERE id = $1',
          [jobId],
        );
        if (rows[0]?.state === 'running' && rows[0].owner) owner = rows[0].owner;
        else await new Promise((w) => setTimeout(w, 100));
      }
      const holder = replicas.findIndex((r) => owner.includes(`-${r.child.pid}-`));
      expect(holder).toBeGreaterThanOrEqual(0);
      const survivor = replicas[1 - holder];
      const before = acknowledged.length;
      replicas[holder].child.kill('SIGKILL');
      await new Promise((w) => setTimeout(w, 3000));
      load = false;
      await Promise.all(clients);
      expect(acknowledged.length).toBeGreaterThan(before); // the survivor kept answering

      // The survivor takes the job over once pg-boss expires the dead replica's hold, and completes it.
      let job = { state: '', attempts: 0, error: null as string | null, result: null as unknown };
      for (let t = Date.now(); Date.now() - t < 150_000;) {
        job = (
          await survivor.send({ method: 'GET', url: `/api/v1/adaptations/${jobId}` })
        ).json() as typeof job;
        if (job.state === 'succeeded' || job.state === 'failed') break;
        await new Promise((w) => setTimeout(w, 500));
      }
      expect(job.error).toBeNull();
      expect(job).toMatchObject({ state: 'succeeded', attempts: 2, result: { candidateVersion: 2 } });

      // Every acknowledged case, image included, is readable from the survivor.
      for (const id of acknowledged) {
        expect((await survivor.send({ method: 'GET', url: `/api/v1/cases/${id}` })).statusCode).toBe(200);
        const image = await fetch(`${survivor.base}/api/v1/cases/${id}/image`);
        expect(image.status).toBe(200);
        await image.arrayBuffer();
      }
      survivor.child.kill('SIGTERM');
      await new Promise((w) => survivor.child.once('exit', w));
    } finally {
      await admin.end().catch(() => undefined);
      await db.drop();
    }
  }, 400_000);

  it('a report export taken by a replica that then died is retried on another and completes there', async () => {
    const db = await freshDatabase('jobs_export');
    // The dead replica: takes the export's delivery from pg-boss and claims its row as a runner would, then
    // is never heard of again (no completion, no failure: what kill -9 leaves behind).
    const dead = new PgBoss({ connectionString: db.url, supervise: false, schedule: false, migrate: false });
    dead.on('error', () => undefined);
    let store: PostgresCaseStore | undefined;
    try {
      // Polls every 3 s, so the dead replica's tight loop below takes the delivery first; an export held by
      // a dead replica is given to another 4 s after it was taken.
      const survivor = await replica(db.url, { JOBS_POLL_SECONDS: '3', EXPORT_LIMIT_SECONDS: '4' });
      const tmpDir = mkdtempSync(join(tmpdir(), 'hv-dead-replica-'));
      dirs.push(tmpDir);
      store = await PostgresCaseStore.open({ url: db.url, tmpDir });
      await dead.start();
      const json = { 'content-type': 'application/json' };
      const specimen = await survivor.send({
        method: 'POST',
        url: '/api/v1/specimens',
        payload: JSON.stringify({ id: 'S-1' }),
        headers: json,
      });
      expect(specimen.statusCode).toBe(201);
      const [cell] = teachingCells(1);
      const upload = await multipart([{ name: 'c.jpg', bytes: cell.bytes }]);
      expect(
        (await survivor.send({ method: 'POST', url: '/api/v1/predict?specimen=S-1', ...upload })).statusCode,
      ).toBe(200);

      // The dead replica must take the delivery before the survivor's worker polls (a few ms after the
      // submission at most, against its 3 s): tried again with a new export should the survivor win.
      let jobId = '';
      for (let round = 0; round < 3 && !jobId; round++) {
        const started = await survivor.send({ method: 'POST', url: '/api/v1/exports/specimens/S-1/report' });
        expect(started.statusCode).toBe(202);
        const id = (started.json() as { id: string }).id;
        for (let t = Date.now(); Date.now() - t < 2500;) {
          const taken = await dead.fetch<{ id: string }>(EXPORT_JOB_KINDS['report.pdf']);
          if (taken[0]?.data.id === id && (await store.jobs.claim(id, 'dead-replica'))) {
            jobId = id;
            break;
          }
          if ((await store.jobs.get(id))?.state !== 'queued') break; // the survivor took it first
          await new Promise((w) => setTimeout(w, 10));
        }
      }
      expect(jobId).not.toBe('');
      await dead.stop({ graceful: false, close: true, wait: true, timeout: 1000 });
      expect(await store.jobs.get(jobId)).toMatchObject({
        state: 'running',
        owner: 'dead-replica',
        attempts: 1,
      });

      let job = {
        state: '',
        attempts: 0,
        error: null as string | null,
        file: null as { url: string } | null,
      };
      for (let t = Date.now(); Date.now() - t < 60_000;) {
        job = (await survivor.send({ method: 'GET', url: `/api/v1/exports/${jobId}` })).json() as typeof job;
        if (job.state === 'succeeded' || job.state === 'failed') break;
        await new Promise((w) => setTimeout(w, 250));
      }
      expect(job.error).toBeNull();
      expect(job).toMatchObject({ state: 'succeeded', attempts: 2 });
      expect((await store.jobs.get(jobId))?.owner).toContain(`-${survivor.child.pid}-`);
      const pdf = await fetch(`${survivor.base}${job.file!.url}`);
      expect(pdf.status).toBe(200);
      expect(
        Buffer.from(await pdf.arrayBuffer())
          .subarray(0, 5)
          .toString(),
      ).toBe('%PDF-');
      survivor.child.kill('SIGTERM');
      await new Promise((w) => survivor.child.once('exit', w));
    } finally {
      await dead.stop({ graceful: false, close: true, wait: true, timeout: 1000 }).catch(() => undefined);
      await store?.close();
      await db.drop();
    }
  }, 120_000);
});
