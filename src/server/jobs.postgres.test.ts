/**
 * Two server processes (main.ts) on one PostgreSQL: 16 clients spread over both, `kill -9` of the replica
 * holding an adaptation job mid-load; the other replica completes the job, and every case either replica
 * acknowledged is readable, image and all, from the survivor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../testing/postgres.js';
import { seedReviewedCells, teachingCells, type Send } from '../testing/reviewed.js';
import { multipart } from '../testing/server.js';
import { REPO_ROOT } from '../testing/shared.js';

notePostgresSkip('two replicas and a job on PostgreSQL');

interface Replica {
  child: ChildProcess;
  base: string;
  send: Send;
}

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts main.ts on the database; resolves once it listens. */
async function replica(url: string): Promise<Replica> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hv-replica-'));
  dirs.push(dataDir);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      PORT: '0',
      DATA_DIR: dataDir,
      DATABASE_URL: url,
      RATE_LIMIT: '0',
      AUTH: 'off',
      // Short enough for a test: pg-boss looks for expired jobs every second, and an adaptation held by a
      // dead replica is given to another after 40 s.
      JOBS_SUPERVISE_SECONDS: '1',
      JOBS_POLL_SECONDS: '0.5',
      ADAPTATION_LIMIT_SECONDS: '40',
    },
  });
  children.push(child);
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const check = () => {
      const m = /at http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout?.on('data', (d: Buffer) => ((out += d.toString()), check()));
    child.stderr?.on('data', (d: Buffer) => ((out += d.toString()), check()));
    child.on('exit', (code) => reject(new Error(`replica exited (${code}): ${out.slice(-2000)}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const send: Send = async (req) => {
    const res = await fetch(base + req.url, {
      method: req.method,
      headers: req.headers,
      body: req.payload === undefined ? undefined : new Uint8Array(Buffer.from(req.payload)),
    });
    const text = await res.text();
    return { statusCode: res.status, json: () => JSON.parse(text) as unknown };
  };
  return { child, base, send };
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
});
