import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HematoError } from '../errors.js';
import type { ImagePrediction } from '../model/types.js';
import { CaseStore, SCHEMA_VERSION, type NewCase } from './store.js';

let dir: string;
let store: CaseStore | undefined;

const prediction: ImagePrediction = {
  label: 'neutrophil',
  confidence: 0.8,
  probabilities: { lymphocyte: 0.2, neutrophil: 0.8 },
  needsReview: false,
  cells: [],
};

function newCase(image: Buffer, extra: Partial<NewCase> = {}): NewCase {
  return {
    file: 'x.jpg',
    image,
    imageType: 'image/jpeg',
    width: 4,
    height: 4,
    model: { name: 'm', version: '1' },
    prediction,
    heatmapPng: Buffer.from('png bytes'),
    ...extra,
  };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hv-store-'));
});

afterEach(() => {
  store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('CaseStore', () => {
  it('creates the schema with WAL, foreign keys and a migration record', () => {
    store = CaseStore.open(dir);
    expect(store.migrations()).toEqual([
      { version: 1, name: expect.any(String), appliedAt: expect.any(String) },
    ]);
    store.close();
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
    store = CaseStore.open(dir);
    const bytes = Buffer.from('some image bytes');
    const a = await store.add(newCase(bytes));
    const b = await store.add(newCase(bytes, { file: 'y.jpg', model: { name: 'm', version: '2' } }));
    expect(a.imageSha256).toBe(b.imageSha256);
    expect(a.imageSha256).toMatch(/^[0-9a-f]{64}$/);
    const path = store.imagePath(a.imageSha256);
    expect(path).toBe(join(dir, 'images', a.imageSha256.slice(0, 2), a.imageSha256));
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(readFileSync(store.heatmapPath(a.heatmapSha256 as string)).toString()).toBe('png bytes');
    expect(b.model).toEqual({ name: 'm', version: '2' });
    expect(a.id).not.toBe(b.id);
    expect(readdirSync(store.tmpDir)).toEqual([]); // no temp file left behind
    expect(await store.readImage(b)).toEqual(bytes);
  });

  it('keeps a blob that an insert in flight still needs when another case using it is deleted', async () => {
    store = CaseStore.open(dir);
    const bytes = Buffer.from('shared bytes');
    const first = await store.add(newCase(bytes));
    // The second insert finds the image already on disk, then writes a new heat map: delete the first case
    // while that heat map is being written, i.e. after the image check and before the row exists.
    const pending = store.add(newCase(bytes, { heatmapPng: Buffer.alloc(4 << 20, 1) }));
    const s = store;
    while (readdirSync(s.tmpDir).length === 0) await new Promise((r) => setImmediate(r));
    expect(store.delete(first.id)).toBe(true);
    const second = await pending;
    expect(existsSync(store.imagePath(second.imageSha256))).toBe(true);
    expect(store.delete(second.id)).toBe(true);
    expect(existsSync(store.imagePath(second.imageSha256))).toBe(false);
    expect(existsSync(store.heatmapPath(second.heatmapSha256 as string))).toBe(false);
  });

  it('deletes the review history with the case', async () => {
    store = CaseStore.open(dir);
    const c = await store.add(newCase(Buffer.from('a')));
    store.addReview(c.id, { label: 'lymphocyte', reviewer: 'r' });
    expect(store.reviews(c.id)).toHaveLength(1);
    expect(
      store.addReview('00000000-0000-4000-8000-000000000000', { label: 'x', reviewer: 'r' }),
    ).toBeUndefined();
    store.delete(c.id);
    expect(store.get(c.id)).toBeUndefined();
    expect(store.reviews(c.id)).toEqual([]);
  });

  it('refuses a database written by a newer schema instead of touching it', () => {
    store = CaseStore.open(dir);
    store.close();
    const db = new Database(join(dir, 'hematovision.db'));
    db.prepare("INSERT INTO schema_migrations VALUES (?, 'future', '2099-01-01')").run(SCHEMA_VERSION + 1);
    db.close();
    let error: unknown;
    try {
      store = CaseStore.open(dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(HematoError);
    expect((error as HematoError).code).toBe('database_too_new');
  });

  it('removes stale temp files at open but leaves recent ones', () => {
    store = CaseStore.open(dir);
    store.close();
    const old = join(dir, 'tmp', 'old.part');
    const recent = join(dir, 'tmp', 'recent.part');
    writeFileSync(old, 'x');
    writeFileSync(recent, 'y');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    store = CaseStore.open(dir);
    expect(readdirSync(join(dir, 'tmp'))).toEqual(['recent.part']);
  });
});
