// Exports as jobs with accounts on: a specimen's PDF report and a CSV of cases made off the request, followed,
// downloaded; the same bytes as the synchronous routes; clinics kept apart; audited. On SQLite, and again on
// PostgreSQL (pg-boss) when a test server answers (HV_TEST_DATABASE_URL).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExportJobJson } from '../api/index.js';
import { buildApp } from './app.js';
import type { Role } from '../api/constants.js';
import { signIn } from '../testing/accounts.js';
import { BACKENDS, databasePerDescribe, databaseUrl, emptyDatabase } from '../testing/backends.js';
import { notePostgresSkip } from '../testing/postgres.js';
import { fakeVision, multipart, parseCsv, solidJpeg } from '../testing/server.js';

const API = '/api/v1';
const MISSING = '00000000-0000-4000-8000-000000000000';

notePostgresSkip('exports as jobs on PostgreSQL');

let dataDir: string;
let app: FastifyInstance;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-exports-'));
  await emptyDatabase();
  app = await build();
});

/** The app on this test's data folder or database (again: a restart with other settings). */
function build(extra: { exportRetentionHours?: number; exportSweepSeconds?: number } = {}) {
  return buildApp({
    vision: fakeVision(),
    dataDir,
    databaseUrl,
    webDir: join(dataDir, 'no-web'),
    rateLimits: false,
    exportRetentionHours: extra.exportRetentionHours,
    // pg-boss polls at most every 0.5 s.
    jobs: { pollSeconds: databaseUrl ? 0.5 : 0.05, exportSweepSeconds: extra.exportSweepSeconds },
  });
}
afterEach(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Creates the account and signs in; the headers its requests carry. */
async function signedIn(name: string, role: Role, clinic: string | null = null) {
  return { cookie: await signIn(app, name, role, clinic) };
}
type Who = Awaited<ReturnType<typeof signedIn>>;

const get = (url: string, who: Who) => app.inject({ url, headers: who });
const post = (url: string, who: Who, payload?: object) =>
  app.inject({ method: 'POST', url, headers: who, ...(payload ? { payload } : {}) });

/** Uploads one image of two cells (the fake model finds two in an image this wide); its case id. */
async function upload(who: Who, rgb: [number, number, number], query = '') {
  const body = await multipart([{ name: `f${rgb.join('-')}.jpg`, bytes: await solidJpeg(120, 60, rgb) }]);
  const res = await app.inject({
    method: 'POST',
    url: `${API}/predict${query}`,
    payload: body.payload,
    headers: { ...body.headers, ...who },
  });
  expect(res.statusCode).toBe(200);
  return (res.json() as { cases: { id: string }[] }).cases[0].id;
}

/** Follows an export until it finished; its last state. */
async function finished(id: string, who: Who): Promise<ExportJobJson> {
  for (let i = 0; i < 200; i++) {
    const res = await get(`${API}/exports/${id}`, who);
    expect(res.statusCode).toBe(200);
    const job = res.json() as ExportJobJson;
    if (job.state === 'succeeded' || job.state === 'failed') return job;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`export ${id} did not finish`);
}

async function auditOf(admin: Who) {
  const res = await get(`${API}/audit?action=export`, admin);
  return (
    res.json() as { entries: { actor: string; targetType: string; targetId: string; detail: string }[] }
  ).entries;
}

describe.each(BACKENDS)('exports as jobs on $name', ({ postgres }) => {
  databasePerDescribe(postgres, 'exports_api');

  it('makes a specimen’s PDF report off the request: followed, downloaded, the synchronous route’s bytes for a signed revision', async () => {
    const north = await signedIn('north', 'clinic', 'North');
    const south = await signedIn('south', 'clinic', 'South');
    const reviewer = await signedIn('rita', 'reviewer');
    const admin = await signedIn('boss', 'admin');
    expect((await post(`${API}/specimens`, north, { id: 'N-1' })).statusCode).toBe(201);
    await upload(north, [200, 30, 30], '?specimen=N-1');
    await upload(north, [30, 30, 200], '?specimen=N-1');

    const started = await post(`${API}/exports/specimens/n-1/report`, north);
    expect(started.statusCode).toBe(202);
    const job = started.json() as ExportJobJson;
    expect(job).toMatchObject({ kind: 'report.pdf', specimen: 'N-1', state: 'queued', file: null });
    expect(started.headers.location).toBe(`${API}/exports/${job.id}`);
    const done = await finished(job.id, north);
    expect(done).toMatchObject({
      state: 'succeeded',
      attempts: 1,
      progress: 1,
      error: null,
      revision: 1,
      file: {
        url: `${API}/exports/${job.id}/file`,
        name: 'hematovision-N-1-r1-draft.pdf',
        contentType: 'application/pdf',
      },
    });
    const file = await get(done.file!.url, north);
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toBe('application/pdf');
    expect(file.headers['content-disposition']).toBe('attachment; filename="hematovision-N-1-r1-draft.pdf"');
    expect(file.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
    expect(file.rawPayload.length).toBe(done.file!.bytes);
    expect(createHash('sha256').update(file.rawPayload).digest('hex')).toBe(done.file!.sha256);

    // A signed revision: the job hands out the frozen PDF, byte for byte what the synchronous route sends.
    expect((await post(`${API}/specimens/N-1/sign`, reviewer, {})).statusCode).toBe(201);
    const signed = await finished(
      ((await post(`${API}/exports/specimens/N-1/report?revision=1`, north)).json() as ExportJobJson).id,
      north,
    );
    expect(signed).toMatchObject({
      state: 'succeeded',
      revision: 1,
      file: { name: 'hematovision-N-1-r1.pdf' },
    });
    const frozen = await get(`${API}/specimens/N-1/report.pdf?revision=1`, north);
    expect((await get(signed.file!.url, north)).rawPayload.equals(frozen.rawPayload)).toBe(true);

    // Another clinic finds neither the specimen nor the export; a reviewer sees both.
    expect((await post(`${API}/exports/specimens/N-1/report`, south)).statusCode).toBe(404);
    expect((await get(`${API}/exports/${job.id}`, south)).statusCode).toBe(404);
    expect((await get(`${API}/exports/${job.id}/file`, south)).statusCode).toBe(404);
    expect((await get(`${API}/exports/${job.id}/file`, reviewer)).statusCode).toBe(200);
    // Unknown specimens, unsigned revisions and unknown or malformed export ids: not found.
    expect((await post(`${API}/exports/specimens/NOPE/report`, north)).json()).toMatchObject({
      error: 'specimen_not_found',
    });
    expect((await post(`${API}/exports/specimens/N-1/report?revision=2`, north)).statusCode).toBe(404);
    for (const id of [MISSING, 'not-a-uuid'])
      for (const url of [`${API}/exports/${id}`, `${API}/exports/${id}/file`])
        expect((await get(url, reviewer)).json(), url).toMatchObject({ error: 'not_found' });
    // Anonymous: refused before anything.
    expect(
      (await app.inject({ method: 'POST', url: `${API}/exports/specimens/N-1/report` })).statusCode,
    ).toBe(401);

    // Each download is an export in the audit trail, as a synchronous one is.
    const audit = await auditOf(admin);
    expect(audit.filter((e) => e.detail.includes(`(export ${job.id})`))).toEqual([
      expect.objectContaining({ actor: 'rita', targetType: 'specimen', targetId: 'N-1' }),
      expect.objectContaining({ actor: 'north', targetType: 'specimen', targetId: 'N-1' }),
    ]);
  });

  it('exports the cases a clinic may see as CSV through a job: the rows GET /cases.csv sends, filters and all', async () => {
    const north = await signedIn('north', 'clinic', 'North');
    const south = await signedIn('south', 'clinic', 'South');
    const reviewer = await signedIn('rita', 'reviewer');
    const admin = await signedIn('boss', 'admin');
    const northCases = [await upload(north, [200, 30, 30]), await upload(north, [30, 30, 200])];
    const southCase = await upload(south, [30, 200, 30]);

    const started = await post(`${API}/exports/cases`, north);
    expect(started.statusCode).toBe(202);
    const done = await finished((started.json() as ExportJobJson).id, north);
    expect(done).toMatchObject({
      kind: 'cases.csv',
      state: 'succeeded',
      file: { name: 'hematovision-cases.csv', contentType: 'text/csv; charset=utf-8' },
    });
    expect(done).not.toHaveProperty('specimen');
    const file = await get(done.file!.url, north);
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-disposition']).toBe('attachment; filename="hematovision-cases.csv"');
    const rows = parseCsv(file.body);
    const id = rows[0].indexOf('id');
    expect(rows[0].slice(0, 4)).toEqual(['id', 'file', 'createdAt', 'cell']);
    // Two cells per image, North's images only.
    expect(
      rows
        .slice(1)
        .map((r) => r[id])
        .sort(),
    ).toEqual([...northCases, ...northCases].sort());
    expect(file.body).toBe((await get(`${API}/cases.csv`, north)).body);

    // The CSV route's filters; a reviewer's export holds every clinic's cases.
    const red = await finished(
      ((await post(`${API}/exports/cases?label=neutrophil`, reviewer)).json() as ExportJobJson).id,
      reviewer,
    );
    const redRows = parseCsv((await get(red.file!.url, reviewer)).body).slice(1);
    expect(new Set(redRows.map((r) => r[id]))).toEqual(new Set([northCases[0]]));
    const all = await finished(
      ((await post(`${API}/exports/cases`, reviewer)).json() as ExportJobJson).id,
      reviewer,
    );
    const allIds = parseCsv((await get(all.file!.url, reviewer)).body)
      .slice(1)
      .map((r) => r[id]);
    expect(new Set(allIds)).toEqual(new Set([...northCases, southCase]));
    expect((await post(`${API}/exports/cases?colour=red`, north)).statusCode).toBe(400);

    // A clinic reads neither another clinic's export nor one holding every clinic's cases.
    expect((await get(`${API}/exports/${done.id}`, south)).statusCode).toBe(404);
    expect((await get(`${API}/exports/${done.id}/file`, south)).statusCode).toBe(404);
    expect((await get(`${API}/exports/${all.id}/file`, north)).statusCode).toBe(404);
    expect((await get(`${API}/exports/${done.id}/file`, reviewer)).statusCode).toBe(200);

    const audit = await auditOf(admin);
    expect(audit.find((e) => e.detail.includes(`(export ${red.id})`))).toMatchObject({
      actor: 'rita',
      targetType: 'cases',
      targetId: 'cases.csv',
      detail: `label=neutrophil&sort=newest (export ${red.id})`, // as the synchronous route writes it
    });
  });

  it('removes an export and its file once past EXPORT_RETENTION_HOURS: then 404, saying why', async () => {
    const north = await signedIn('north', 'clinic', 'North');
    await upload(north, [200, 30, 30]);
    const start = async () =>
      finished(((await post(`${API}/exports/cases`, north)).json() as ExportJobJson).id, north);
    // Swept between the route finding the job and reading its file: 404 as a moment later, not 500.
    const raced = await start();
    const store = app.caseStore;
    const read = store.readExportFile.bind(store);
    store.readExportFile = async (sha) => {
      await store.sweepExports(['export-cases'], new Date(Date.now() + 60_000));
      return read(sha);
    };
    expect((await get(raced.file!.url, north)).statusCode).toBe(404);
    store.readExportFile = read;

    const done = await start();
    expect((await get(done.file!.url, north)).statusCode).toBe(200); // within the default 24 hours: kept
    // Restarted keeping exports for 2 seconds, swept every 0.2 s.
    await app.close();
    app = await build({ exportRetentionHours: 2 / 3600, exportSweepSeconds: 0.2 });
    let res = await get(`${API}/exports/${done.id}`, north);
    for (let i = 0; i < 100 && res.statusCode === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await get(`${API}/exports/${done.id}`, north);
    }
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'not_found' });
    expect(res.json().message).toContain('finished more than 0.000');
    expect(res.json().message).toContain('EXPORT_RETENTION_HOURS');
    expect((await get(done.file!.url, north)).statusCode).toBe(404);
    await expect(app.caseStore.readExportFile(done.file!.sha256)).rejects.toMatchObject({
      code: 'file_missing',
    });
  });

  // SQLite: with its runner closed, a job stays queued (pg-boss, stopped, could not take one at all).
  it.skipIf(postgres)(
    'answers 409 for the file of an export still queued, or failed (with why)',
    async () => {
      const north = await signedIn('north', 'clinic', 'North');
      await upload(north, [200, 30, 30]);
      // No runner: the job stays queued.
      await app.jobQueue.close();
      const job = (await post(`${API}/exports/cases`, north)).json() as ExportJobJson;
      const early = await get(`${API}/exports/${job.id}/file`, north);
      expect(early.statusCode).toBe(409);
      expect(early.json()).toMatchObject({ error: 'export_not_ready' });
      expect((await get(`${API}/exports/${job.id}`, north)).json()).toMatchObject({
        state: 'queued',
        file: null,
      });
      await app.caseStore.jobs.failUnfinished(job.id, 'The disk is full.');
      expect((await get(`${API}/exports/${job.id}/file`, north)).json()).toMatchObject({
        error: 'export_failed',
        message: 'The export failed: The disk is full.',
      });
    },
  );
});
