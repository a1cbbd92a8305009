/**
 * One replica against two on the same PostgreSQL database, side by side in one run: two main.ts processes
 * (the bundled model, network in a worker thread) on a fresh database; 16 clients POST /predict with one
 * teaching image each time, either all to replica A (B idle) or spread over A and B. Runs alternate so other
 * work on a shared machine weighs on both alike. Prints requests/s, p50 and p99 (it writes nothing).
 *
 *   source /work/pg-env.sh   # or: eval "$(bash scripts/pg-cluster.sh start)"
 *   npx tsx scripts/bench-replicas.ts [requests=480] [runs=2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freshDatabase } from '../src/testing/postgres.js';
import { teachingCells } from '../src/testing/reviewed.js';
import { multipart } from '../src/testing/server.js';

const total = Number(process.argv[2] ?? 480);
const runs = Number(process.argv[3] ?? 2);
const CLIENTS = 16;
const ROOT = resolve(import.meta.dirname, '..');

async function start(url: string, dir: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', DATA_DIR: dir, DATABASE_URL: url, RATE_LIMIT: '0', AUTH: 'off' },
  });
  let out = '';
  const port = await new Promise<number>((ok, fail) => {
    const check = () => {
      const m = /at http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) ok(Number(m[1]));
    };
    child.stdout?.on('data', (d: Buffer) => ((out += d.toString()), check()));
    child.stderr?.on('data', (d: Buffer) => ((out += d.toString()), check()));
    child.on('exit', (code) => fail(new Error(`replica exited (${code}): ${out.slice(-1000)}`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

async function load(bases: string[], n: number, body: { payload: Buffer; headers: Record<string, string> }) {
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const base = bases[c % bases.length];
      while (next < n) {
        next++;
        const t = performance.now();
        const res = await fetch(`${base}/api/v1/predict`, {
          method: 'POST',
          headers: body.headers,
          body: new Uint8Array(body.payload),
        });
        await res.arrayBuffer();
        if (res.status === 200) latencies.push(performance.now() - t);
        else failed++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { rate: latencies.length / seconds, p50: q(0.5), p99: q(0.99), failed };
}

const db = await freshDatabase('bench_replicas');
const dirs = [mkdtempSync(join(tmpdir(), 'hv-bench-a-')), mkdtempSync(join(tmpdir(), 'hv-bench-b-'))];
const replicas: { child: ChildProcess; base: string }[] = [];
try {
  for (const d of dirs) replicas.push(await start(db.url, d));
  const [cell] = teachingCells(1);
  const body = await multipart([{ name: 'cell.jpg', bytes: cell.bytes }]);
  const one = [replicas[0].base];
  const two = replicas.map((r) => r.base);
  await load(two, 64, body); // warm-up: both models' first runs, connections
  const results: Record<string, Awaited<ReturnType<typeof load>>[]> = { one: [], two: [] };
  for (let r = 0; r < runs; r++) {
    for (const [name, bases] of (r % 2 === 0
      ? [
          ['one', one],
          ['two', two],
        ]
      : [
          ['two', two],
          ['one', one],
        ]) as [string, string[]][])
      results[name].push(await load(bases, total, body));
  }
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log(`${cpus().length} cores (${cpus()[0]?.model}), ${CLIENTS} clients, ${total} requests a run`);
  for (const name of ['one', 'two'])
    console.log(
      `${name === 'one' ? 'one replica ' : 'two replicas'}: ` +
        results[name]
          .map(
            (x) =>
              `${x.rate.toFixed(1)} req/s, p50 ${ms(x.p50)}, p99 ${ms(x.p99)}${x.failed ? `, ${x.failed} failed` : ''}`,
          )
          .join('; '),
    );
  const mean = (xs: { rate: number }[]) => xs.reduce((a, x) => a + x.rate, 0) / xs.length;
  console.log(`two ÷ one (requests/s): ${(mean(results.two) / mean(results.one)).toFixed(2)}×`);
} finally {
  for (const r of replicas) r.child.kill('SIGTERM');
  await Promise.all(replicas.map((r) => new Promise((w) => r.child.once('exit', w))));
  await db.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
