/**
 * The case store's write latency, SQLite against PostgreSQL: add a case (a 100 kB image of new bytes, its
 * heat-map data, one cell) and add a review, one at a time, as a predict and a PATCH store them. Both stores
 * run in this process; their operations alternate in blocks so that other work on a shared machine weighs
 * on both alike. Writes the "Store write latency" section of BENCHMARKS.md (replacing an earlier one).
 *
 *   eval "$(HV_PG_FSYNC=on bash scripts/pg-cluster.sh start)"     # durable, like SQLite's synchronous=FULL
 *   npx tsx scripts/bench-store.ts [ops=300] [imageKiB=100]
 *
 * The PostgreSQL server is BENCH_DATABASE_URL or HV_TEST_DATABASE_URL; a fresh database is made and dropped.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import {
  PostgresCaseStore,
  SqliteCaseStore,
  type CaseStore,
  type NewCase,
} from '../src/server/store/index.js';

const ops = Number(process.argv[2] ?? 300);
const imageBytes = Number(process.argv[3] ?? 100) * 1024;
const BLOCK = 25;
const WARM_UP = 20;
const HEADING = '## Store write latency';

const serverUrl = process.env.BENCH_DATABASE_URL ?? process.env.HV_TEST_DATABASE_URL;
if (!serverUrl) {
  console.error('Needs a PostgreSQL server: eval "$(HV_PG_FSYNC=on bash scripts/pg-cluster.sh start)"');
  process.exit(2);
}

const classes = [
  'basophil',
  'eosinophil',
  'erythroblast',
  'ig',
  'lymphocyte',
  'monocyte',
  'neutrophil',
  'platelet',
];
const probabilities = Object.fromEntries(classes.map((c, i) => [c, i === 6 ? 0.86 : 0.02]));

function newCase(i: number): NewCase {
  const box = { x: 10, y: 12, width: 120, height: 120, score: 0.97 };
  return {
    file: `field-${i}.jpg`,
    image: randomBytes(imageBytes), // new bytes each time: every add stores an image
    imageType: 'image/jpeg',
    width: 360,
    height: 360,
    model: { name: 'hematovision-wbc8', version: '2026.12.02', tta: false },
    prediction: {
      label: 'neutrophil',
      confidence: 0.86,
      probabilities,
      needsReview: false,
      reviewReasons: [],
      cells: [
        { box, label: 'neutrophil', confidence: 0.86, probabilities, needsReview: false, reviewReasons: [] },
      ],
    },
    heatmapData: {
      regions: [
        { ...box, size: 120, cam: Array.from({ length: 49 }, (_, k) => k / 48), label: 'neutrophil' },
      ],
    },
  };
}

interface Timings {
  add: number[];
  review: number[];
}

async function run(store: CaseStore, from: number, n: number, t: Timings): Promise<void> {
  for (let i = from; i < from + n; i++) {
    const input = newCase(i);
    let start = performance.now();
    const c = await store.add(input);
    t.add.push(performance.now() - start);
    start = performance.now();
    await store.addReview(c.id, { label: 'eosinophil', reviewer: 'bench', note: 'checked' });
    t.review.push(performance.now() - start);
  }
}

function pct(xs: number[], p: number): string {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(1);
}

const dbName = `bench_store_${process.pid}`;
const admin = new pg.Client({ connectionString: serverUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${dbName}`);
const url = new URL(serverUrl);
url.pathname = `/${dbName}`;
const dir = mkdtempSync(join(tmpdir(), 'hv-bench-store-'));
const sqlite = SqliteCaseStore.open(dir);
const postgres = await PostgresCaseStore.open({ url: url.toString(), tmpDir: join(dir, 'pg-tmp') });
const settings = await admin.query<{ name: string; setting: string }>(
  "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')",
);
const pgSetting = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));

const times: Record<'SQLite' | 'PostgreSQL', Timings> = {
  SQLite: { add: [], review: [] },
  PostgreSQL: { add: [], review: [] },
};
try {
  // Warm-up (connections, statement caches, file-system metadata) is not counted.
  await run(sqlite, -WARM_UP, WARM_UP, { add: [], review: [] });
  await run(postgres, -WARM_UP, WARM_UP, { add: [], review: [] });
  for (let done = 0; done < ops; done += BLOCK) {
    const n = Math.min(BLOCK, ops - done);
    await run(sqlite, done, n, times.SQLite);
    await run(postgres, done, n, times.PostgreSQL);
  }
} finally {
  await sqlite.close();
  await postgres.close();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const lines = [
  `${HEADING} (SQLite vs PostgreSQL, \`scripts/bench-store.ts\`)`,
  '',
  `- date: ${new Date().toISOString()}; machine: ${cpus()[0]?.model.trim()}, ${cpus().length} cores, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}; load average at the end ${load}`,
  `- ${ops} operations each, one at a time, after ${WARM_UP} unmeasured; alternating blocks of ${BLOCK}. ` +
    `Add = a case with a ${imageBytes / 1024} KiB image (new bytes every time), one cell and its heat-map data; ` +
    'review = one review appended. Each returns the stored case, once durable.',
  '- SQLite: WAL, synchronous=FULL, images as files (temp file, fsync, rename, fsync folder) in a temporary folder. ' +
    `PostgreSQL ${pgSetting.server_version} on the same machine and disk over TCP loopback ` +
    `(fsync=${pgSetting.fsync}, synchronous_commit=${pgSetting.synchronous_commit}), image bytes in a bytea column ` +
    'committed with the row.',
  '- What each waits for: a SQLite add fsyncs the image file, its folder and then the WAL (three flushes, in ' +
    'this process); a PostgreSQL add is one statement and one WAL flush in the server, plus a loopback round ' +
    'trip. A review is one flush on both; PostgreSQL adds the round trip and the hand-over between processes, ' +
    'which a busy 2-core machine makes visible.',
  '',
  '| store | add p50 | add p99 | review p50 | review p99 |',
  '| --- | --- | --- | --- | --- |',
  ...(['SQLite', 'PostgreSQL'] as const).map(
    (name) =>
      `| ${name} | ${pct(times[name].add, 50)} ms | ${pct(times[name].add, 99)} ms | ` +
      `${pct(times[name].review, 50)} ms | ${pct(times[name].review, 99)} ms |`,
  ),
];
const section = lines.join('\n');
console.log(section);

const file = resolve('BENCHMARKS.md');
if (existsSync(file)) {
  const old = readFileSync(file, 'utf8');
  const start = old.indexOf(HEADING);
  const end = start < 0 ? -1 : old.indexOf('\n## ', start + HEADING.length);
  const next =
    start < 0
      ? `${old.trimEnd()}\n\n${section}\n`
      : `${old.slice(0, start)}${section}\n${end < 0 ? '' : old.slice(end)}`;
  writeFileSync(file, next);
  console.log('\nWrote the section into BENCHMARKS.md');
}
