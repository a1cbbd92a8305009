import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createVersion1DataDir } from '../../testing/server.js';
import { describeStoreContract, heatmapData, newCase } from './contract.js';
import { SCHEMA_VERSION, SqliteCaseStore } from './index.js';
import { MIGRATIONS } from './migrations.js';

describeStoreContract('SQLite', async () => {
  let root = mkdtempSync(join(tmpdir(), 'hv-store-contract-'));
  const db = () => new Database(join(root, 'hematovision.db'));
  const write = (sql: string, ...params: unknown[]) => {
    const d = db();
    try {
      d.prepare(sql).run(...params);
    } finally {
      d.close();
    }
  };
  return {
    reset: async () => {
      rmSync(root, { recursive: true, force: true });
      root = mkdtempSync(join(tmpdir(), 'hv-store-contract-'));
    },
    open: async () => SqliteCaseStore.open(root),
    hasBlob: async (kind, sha) =>
      existsSync(
        join(root, { image: 'images', heatmap: 'heatmaps', export: 'exports' }[kind], sha.slice(0, 2), sha),
      ),
    recordMigration: async (version) =>
      write("INSERT INTO schema_migrations VALUES (?, 'future', '2099-01-01')", version),
    makeLegacyReasons: async (id, cells) =>
      write(
        'UPDATE cases SET review_reasons = NULL, needs_review = 0, cells = ? WHERE id = ?',
        JSON.stringify(cells),
        id,
      ),
    runSql: async (sql) => write(sql),
    dispose: async () => rmSync(root, { recursive: true, force: true }),
  };
});

let dir: string;
let store: SqliteCaseStore | undefined;

function heatmapFiles(): string[] {
  return readdirSync(join(dir, 'heatmaps'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hv-store-'));
});

afterEach(async () => {
  await store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteCaseStore (its own: files, WAL, the in-memory guard)', () => {
  it('creates the schema with WAL, foreign keys and a migration record', async () => {
    store = SqliteCaseStore.open(dir);
    expect(await store.migrations()).toEqual(
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name, appliedAt: expect.any(String) })),
    );
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.at(-1)?.version);
    await store.close();
    const db = new Database(join(dir, 'hematovision.db'), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = (
        db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").all() as {
          name: string;
        }[]
      ).map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(['cases', 'reviews', 'schema_migrations']));
    } finally {
      db.close();
    }
  });

  it('stores images content-addressed and durable before the row, with model name and version', async () => {
    store = SqliteCaseStore.open(dir);
    const bytes = Buffer.from('some image bytes');
    const a = await store.add(newCase(bytes));
    const b = await store.add(
      newCase(bytes, { file: 'y.jpg', model: { name: 'm', version: '2', tta: true } }),
    );
    expect(a.imageSha256).toBe(b.imageSha256);
    expect(a.imageSha256).toMatch(/^[0-9a-f]{64}$/);
    const path = store.imagePath(a.imageSha256);
    expect(path).toBe(join(dir, 'images', a.imageSha256.slice(0, 2), a.imageSha256));
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(readFileSync(store.heatmapPath(a.heatmapSha256 as string)).toString()).toBe('png bytes');
    expect(a.model).toEqual({ name: 'm', version: '1', sha256: null, tta: false });
    expect(b.model).toEqual({ name: 'm', version: '2', sha256: null, tta: true });
    expect(a.id).not.toBe(b.id);
    expect(readdirSync(store.tmpDir)).toEqual([]); // no temp file left behind
    expect(await store.readImage(b)).toEqual(bytes);
  });

  it('keeps a blob that an insert in flight still needs when another case using it is deleted', async () => {
    store = SqliteCaseStore.open(dir);
    const bytes = Buffer.from('shared bytes');
    const first = await store.add(newCase(bytes));
    // The second insert finds the image already on disk, then writes a new heat map: delete the first case
    // while that heat map is being written, i.e. after the image check and before the row exists.
    const pending = store.add(newCase(bytes, { heatmapPng: Buffer.alloc(4 << 20, 1) }));
    const s = store;
    while (readdirSync(s.tmpDir).length === 0) await new Promise((r) => setImmediate(r));
    expect(await store.delete(first.id)).toBe(true);
    const second = await pending;
    expect(existsSync(store.imagePath(second.imageSha256))).toBe(true);
    expect(await store.delete(second.id)).toBe(true);
    expect(existsSync(store.imagePath(second.imageSha256))).toBe(false);
    expect(existsSync(store.heatmapPath(second.heatmapSha256 as string))).toBe(false);
  });

  it('migrates a schema-1 database and keeps serving the heat maps it stored', async () => {
    const id = '11111111-1111-4111-8111-111111111111';
    const old = { id, image: Buffer.from('old image'), heatmapPng: Buffer.from('old heat map png') };
    const { imageSha256, heatmapSha256 } = createVersion1DataDir(dir, old);
    store = SqliteCaseStore.open(dir);
    expect((await store.migrations()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect((await store.migrations())[0].appliedAt).toBe('2024-01-01T00:00:00.000Z'); // history kept
    const c = await store.get(id);
    expect(c).toMatchObject({ imageSha256, heatmapSha256, hasHeatmapData: false, label: 'neutrophil' });
    expect(c?.model.tta).toBe(false); // analysed before test-time augmentation existed: one view
    expect(await store.readHeatmap(c as NonNullable<typeof c>)).toEqual(old.heatmapPng);
    expect(await store.readImage(c as NonNullable<typeof c>)).toEqual(old.image);
    expect(await store.readHeatmapData(id)).toBeNull();
    // New cases go into the migrated table beside the old one.
    const fresh = await store.add(newCase(Buffer.from('new'), { heatmapPng: undefined, heatmapData }));
    expect(fresh.hasHeatmapData).toBe(true);
    expect((await store.list({ limit: 10, offset: 0 })).total).toBe(2);
    await store.close();
    // Opening again applies nothing twice.
    store = SqliteCaseStore.open(dir);
    expect((await store.migrations()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect((await store.get(id))?.heatmapSha256).toBe(heatmapSha256);
  });

  it('migrates export jobs that finished before migration 11 to name their files, so a sweep keeps a shared one', async () => {
    store = SqliteCaseStore.open(dir);
    const job = await store.jobs.create('export-report', null);
    await store.jobs.claim(job.id, 'r');
    const sha = await store.putExportFile(job.id, 'r', Buffer.from('%PDF made by schema 10'));
    await store.jobs.finish(job.id, 'r', { state: 'succeeded', result: { sha256: sha } });
    await store.close();
    store = undefined;
    // Back to schema 10: the job's result names the file, no reference column yet.
    const raw = new Database(join(dir, 'hematovision.db'));
    raw.exec(`DROP INDEX jobs_file; DROP INDEX jobs_finished; ALTER TABLE jobs DROP COLUMN file_sha256;
      DELETE FROM schema_migrations WHERE version = 11;`);
    raw.close();
    store = SqliteCaseStore.open(dir);
    // Another export of the same bytes, swept: the migrated job's file stays.
    const again = await store.jobs.create('export-report', null);
    await store.jobs.claim(again.id, 'r');
    await store.putExportFile(again.id, 'r', Buffer.from('%PDF made by schema 10'));
    await store.jobs.finish(again.id, 'r', { state: 'succeeded', result: { sha256: sha } });
    const raw2 = new Database(join(dir, 'hematovision.db'));
    raw2.prepare("UPDATE jobs SET finished_at = '2000-01-01T00:00:00.000Z' WHERE id = ?").run(again.id);
    raw2.close();
    expect(await store.sweepExports(['export-report'], new Date(Date.now() - 60_000))).toEqual({
      jobs: 1,
      files: 0,
    });
    expect((await store.readExportFile(sha)).toString()).toBe('%PDF made by schema 10');
  });

  it('migrates to specimens and per-cell reviews: older rows and their reviews survive as cell 0', async () => {
    const id = '22222222-2222-4222-8222-222222222222';
    const fieldId = '33333333-3333-4333-8333-333333333333';
    createVersion1DataDir(dir, { id, image: Buffer.from('img'), heatmapPng: Buffer.from('hm') });
    // Before the migration: an image-level review of the old case, and a two-cell field (both cells
    // flagged) reviewed once at image level.
    const cell = (x: number) => ({
      box: { x, y: 0, width: 10, height: 10, score: 0.9 },
      label: 'lymphocyte',
      confidence: 0.4,
      probabilities: { lymphocyte: 0.4, neutrophil: 0.6 },
      needsReview: true,
    });
    const db = new Database(join(dir, 'hematovision.db'));
    db.prepare(
      `INSERT INTO cases SELECT ?, '2024-01-03T00:00:00.000Z', 'field.jpg', image_sha256, image_type, image_bytes,
         width, height, NULL, model_name, model_version, 'lymphocyte', 0.4, 1, probabilities, ?, NULL
       FROM cases WHERE id = ?`,
    ).run(fieldId, JSON.stringify([cell(0), cell(20)]), id);
    const review = db.prepare(
      `INSERT INTO reviews (case_id, label, reviewer, note, reviewed_at) VALUES (?, ?, 'Dr Old', '', ?)`,
    );
    review.run(id, 'monocyte', '2024-01-04T00:00:00.000Z');
    review.run(fieldId, 'neutrophil', '2024-01-05T00:00:00.000Z');
    db.close();

    store = SqliteCaseStore.open(dir);
    expect((await store.migrations()).at(-1)?.version).toBe(SCHEMA_VERSION);
    expect(await store.reviews(id)).toEqual([
      { label: 'monocyte', reviewer: 'Dr Old', note: '', reviewedAt: '2024-01-04T00:00:00.000Z', cell: 0 },
    ]);
    expect((await store.get(id))?.review?.label).toBe('monocyte');
    const field = await store.get(fieldId);
    expect(field?.cells.map((c) => [c.review?.label ?? null, c.needsReview])).toEqual([
      ['neutrophil', false],
      [null, true],
    ]);
    // Its second cell still needs review, and the filter agrees with the flag.
    expect(field?.needsReview).toBe(true);
    const flagged = await store.list({ needsReview: true, limit: 10, offset: 0 });
    expect(flagged.cases.map((c) => c.id)).toEqual([fieldId]);
    await store.addReview(fieldId, { label: 'lymphocyte', reviewer: 'Dr New', cell: 1 });
    expect((await store.get(fieldId))?.needsReview).toBe(false);
    expect((await store.list({ needsReview: true, limit: 10, offset: 0 })).total).toBe(0);

    // Specimens go beside them; older cases belong to none.
    const s = await store.addSpecimen({ id: 'S-1', targetCount: 100 });
    expect(s).toMatchObject({ id: 'S-1', imageCount: 0, version: 0 });
    expect(await store.addSpecimen({ id: 's-1', targetCount: 200 })).toBeUndefined();
    expect((await store.get(id))?.specimenId).toBeNull();
    const added = await store.add(newCase(Buffer.from('in specimen'), { specimenId: 'S-1' }));
    expect(added.specimenId).toBe('S-1');
    expect(await store.getSpecimen('s-1')).toMatchObject({ imageCount: 1, version: 1 });
    await store.addReview(added.id, { label: 'monocyte', reviewer: 'X' });
    expect((await store.getSpecimen('S-1'))?.version).toBe(2);
  });

  it('lets concurrent renders of one case attach without corrupting anything', async () => {
    const opened = SqliteCaseStore.open(dir);
    store = opened;
    const c = await opened.add(newCase(Buffer.from('img'), { heatmapPng: undefined, heatmapData }));
    const renders = [Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 2)];
    const results = await Promise.all(renders.map((png) => opened.attachHeatmap(c.id, png)));
    const sha = (await store.get(c.id))?.heatmapSha256 as string;
    expect(results.map((r) => r?.heatmapSha256)).toEqual([sha, sha, sha]);
    const kept = renders.find((r) => createHash('sha256').update(r).digest('hex') === sha);
    expect(kept).toBeDefined();
    expect(readFileSync(store.heatmapPath(sha)).equals(kept as Buffer)).toBe(true);
    expect(heatmapFiles()).toEqual([sha]); // the losing render was removed
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('removes stale temp files at open but leaves recent ones', async () => {
    store = SqliteCaseStore.open(dir);
    await store.close();
    const old = join(dir, 'tmp', 'old.part');
    const recent = join(dir, 'tmp', 'recent.part');
    writeFileSync(old, 'x');
    writeFileSync(recent, 'y');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    store = SqliteCaseStore.open(dir);
    expect(readdirSync(join(dir, 'tmp'))).toEqual(['recent.part']);
  });
});
