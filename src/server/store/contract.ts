/**
 * The behaviour every CaseStore owes the server, as one vitest suite that each implementation runs against
 * its own database (sqlite.test.ts, postgres.test.ts). What only one of them has (file layout, WAL, advisory
 * locks) is tested beside it instead.
 */
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HematoError } from '../../errors.js';
import type { CellPrediction, ImagePrediction } from '../../model/types.js';
import type { HeatmapData } from '../../pipeline.js';
import type { BlobKind } from './blobs.js';
import { accountsContract } from './contract-accounts.js';
import { specimenContract } from './contract-specimens.js';
import { exportFileContract } from './contract-exports.js';
import { jobContract } from './contract-jobs.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import type { CaseStore, NewCase } from './types.js';

/** One database for the suite, emptied before each test, and a way to look at it from outside the store. */
export interface StoreBackend {
  /** Empties the database (and its bytes): the next open() starts from nothing. */
  reset(): Promise<void>;
  /** A store on the database; opening a second one is a second connection to the same data. */
  open(): Promise<CaseStore>;
  /** Whether bytes with this sha256 are stored. */
  hasBlob(kind: BlobKind, sha: string): Promise<boolean>;
  /** Records a schema migration this version does not know, as a newer HematoVision would. */
  recordMigration(version: number): Promise<void>;
  /** Rewrites a case as one stored before review reasons existed: no reasons, image flag off, these cells. */
  makeLegacyReasons(id: string, cells: unknown[]): Promise<void>;
  /** Runs one SQL statement from outside the store, as someone with the database file or a login could. */
  runSql(sql: string): Promise<void>;
  dispose(): Promise<void>;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export const prediction: ImagePrediction = {
  label: 'neutrophil',
  confidence: 0.8,
  probabilities: { lymphocyte: 0.2, neutrophil: 0.8 },
  needsReview: false,
  reviewReasons: [],
  cells: [],
};

export const heatmapData: HeatmapData = {
  regions: [
    {
      x: 1,
      y: 2,
      size: 3,
      cam: Array.from({ length: 49 }, (_, i) => i / 48),
      box: { x: 1, y: 2, width: 3, height: 3, score: 0.9 },
      label: 'neutrophil',
    },
  ],
};

export function newCase(image: Buffer, extra: Partial<NewCase> = {}): NewCase {
  return {
    file: 'x.jpg',
    image,
    imageType: 'image/jpeg',
    width: 4,
    height: 4,
    model: { name: 'm', version: '1', tta: false },
    prediction,
    heatmapPng: Buffer.from('png bytes'),
    ...extra,
  };
}

function cell(label: string, confidence: number, needsReview: boolean): CellPrediction {
  return {
    box: { x: 0, y: 0, width: 4, height: 4, score: 1 },
    label,
    confidence,
    probabilities: { [label]: confidence },
    needsReview,
    reviewReasons: needsReview ? ['low_confidence'] : [],
  };
}

export function describeStoreContract(name: string, makeBackend: () => Promise<StoreBackend>): void {
  describe(`CaseStore contract: ${name}`, () => {
    let backend: StoreBackend;
    const opened: CaseStore[] = [];
    const open = async () => {
      const s = await backend.open();
      opened.push(s);
      return s;
    };

    beforeAll(async () => {
      backend = await makeBackend();
    });
    afterAll(async () => {
      await backend?.dispose();
    });
    beforeEach(async () => {
      await backend.reset();
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    specimenContract(open, newCase);
    jobContract(open);
    exportFileContract(open);
    accountsContract(open, newCase, (sql) => backend.runSql(sql));

    it('records every migration, once, however often it is opened', async () => {
      const store = await open();
      const versions = MIGRATIONS.map((m) => m.version);
      expect((await store.migrations()).map((m) => m.version)).toEqual(versions);
      const [first] = await store.migrations();
      expect(first).toEqual({ version: 1, name: 'cases and review history', appliedAt: expect.any(String) });
      expect(new Date(first.appliedAt).toISOString()).toBe(first.appliedAt);
      const again = await open();
      expect(await again.migrations()).toEqual(await store.migrations());
    });

    it('stores images content-addressed, once, with model name, version and sha256', async () => {
      const store = await open();
      const bytes = Buffer.from('some image bytes');
      const a = await store.add(newCase(bytes));
      const b = await store.add(
        newCase(bytes, { file: 'y.jpg', model: { name: 'm', version: '2', sha256: 'ab12', tta: true } }),
      );
      expect(a.imageSha256).toBe(sha(bytes));
      expect(b.imageSha256).toBe(a.imageSha256);
      expect(a.id).not.toBe(b.id);
      expect(a).toMatchObject({ file: 'x.jpg', imageType: 'image/jpeg', imageBytes: bytes.length, width: 4 });
      // The model file's sha256 is kept when given (every case the server stores); unknown otherwise.
      expect(a.model).toEqual({ name: 'm', version: '1', sha256: null, tta: false });
      expect(b.model).toEqual({ name: 'm', version: '2', sha256: 'ab12', tta: true });
      expect(new Date(a.createdAt).toISOString()).toBe(a.createdAt);
      expect(await store.readImage(b)).toEqual(bytes);
      expect((await store.readHeatmap(a))?.toString()).toBe('png bytes');
      expect(await store.get(a.id)).toEqual(a);
      // Deleting one keeps the bytes the other uses; deleting both removes them.
      expect(await store.delete(a.id)).toBe(true);
      expect(await store.readImage(b)).toEqual(bytes);
      expect(await store.delete(b.id)).toBe(true);
      expect(await store.delete(b.id)).toBe(false);
      expect(await backend.hasBlob('image', sha(bytes))).toBe(false);
      expect(await backend.hasBlob('heatmap', sha('png bytes'))).toBe(false);
    });

    it('never loses bytes a concurrent insert needs when another case using them is deleted', async () => {
      const store = await open();
      const bytes = Buffer.from('shared bytes');
      for (let round = 0; round < 10; round++) {
        const first = await store.add(newCase(bytes));
        const [second] = await Promise.all([
          store.add(newCase(bytes, { heatmapPng: Buffer.alloc(256 << 10, round) })),
          store.delete(first.id),
        ]);
        expect(await store.readImage(second)).toEqual(bytes);
        expect(await store.delete(second.id)).toBe(true);
        expect(await backend.hasBlob('image', sha(bytes))).toBe(false);
      }
    });

    it('acknowledges each of concurrent inserts once committed; a bad row fails alone', async () => {
      const store = await open();
      const adds = Array.from({ length: 8 }, (_, i) =>
        store.add(
          newCase(
            Buffer.from(`image ${i}`),
            i === 3 ? { file: null as unknown as string } : { file: `${i}.jpg` },
          ),
        ),
      );
      const settled = await Promise.allSettled(adds);
      expect(settled.map((r) => r.status)).toEqual([
        ...Array<string>(3).fill('fulfilled'),
        'rejected',
        ...Array<string>(4).fill('fulfilled'),
      ]);
      // Committed, as another connection sees it, by the time each add resolved.
      const other = await open();
      const files: string[] = [];
      for await (const c of other.iterate({ sort: 'oldest' })) files.push(c.file);
      expect(files.sort()).toEqual(['0.jpg', '1.jpg', '2.jpg', '4.jpg', '5.jpg', '6.jpg', '7.jpg']);
    });

    it('keeps the review history, shows the latest, and deletes it with the case', async () => {
      const store = await open();
      const c = await store.add(newCase(Buffer.from('a')));
      expect(c.review).toBeNull();
      await store.addReview(c.id, { label: 'lymphocyte', reviewer: 'r1' });
      const reviewed = await store.addReview(c.id, {
        label: 'monocyte',
        reviewer: 'r2',
        note: 'second look',
      });
      expect(reviewed?.review).toEqual({
        label: 'monocyte',
        reviewer: 'r2',
        note: 'second look',
        reviewedAt: expect.any(String),
      });
      expect(reviewed?.label).toBe('neutrophil'); // the model's prediction is kept beside it
      const history = await store.reviews(c.id);
      expect(history.map((r) => [r.label, r.reviewer, r.note])).toEqual([
        ['lymphocyte', 'r1', ''],
        ['monocyte', 'r2', 'second look'],
      ]);
      expect(new Date(history[0].reviewedAt).toISOString()).toBe(history[0].reviewedAt);
      const unknown = '00000000-0000-4000-8000-000000000000';
      expect(await store.addReview(unknown, { label: 'x', reviewer: 'r' })).toBeUndefined();
      expect(await store.get(unknown)).toBeUndefined();
      await store.delete(c.id);
      expect(await store.get(c.id)).toBeUndefined();
      expect(await store.reviews(c.id)).toEqual([]);
    });

    it('lists, filters, sorts, pages and iterates the same way', async () => {
      const store = await open();
      const add = (file: string, label: string, confidence: number, cells: CellPrediction[] = []) =>
        store.add(
          newCase(Buffer.from(file), {
            file,
            heatmapPng: undefined,
            prediction: {
              ...prediction,
              label,
              confidence,
              probabilities: { [label]: confidence, zeta: 0 },
              needsReview: confidence < 0.5,
              reviewReasons: confidence < 0.5 ? ['low_confidence'] : [],
              cells,
            },
          }),
        );
      const a = await add('Alpha_1.jpg', 'neutrophil', 0.9);
      const b = await add('beta%2.png', 'lymphocyte', 0.4);
      const c = await add('gamma.jpg', 'neutrophil', 0.7, [cell('neutrophil', 0.7, false)]);
      const d = await add('ALPHAx1.jpg', 'eosinophil', 0.95);
      await store.addReview(c.id, { label: 'monocyte', reviewer: 'r' });
      const ids = async (filter: Parameters<CaseStore['list']>[0]) => {
        const page = await store.list(filter);
        return { ids: page.cases.map((x) => x.id), total: page.total };
      };
      const all = { limit: 10, offset: 0 };
      expect(await ids(all)).toEqual({ ids: [d.id, c.id, b.id, a.id], total: 4 }); // newest first
      expect((await ids({ ...all, sort: 'oldest' })).ids).toEqual([a.id, b.id, c.id, d.id]);
      expect((await ids({ ...all, sort: 'least-confident' })).ids).toEqual([b.id, c.id, a.id, d.id]);
      expect((await ids({ ...all, sort: 'most-confident' })).ids).toEqual([d.id, a.id, c.id, b.id]);
      expect(await ids({ limit: 2, offset: 1 })).toEqual({ ids: [c.id, b.id], total: 4 });
      expect(await ids({ ...all, label: 'neutrophil' })).toEqual({ ids: [c.id, a.id], total: 2 });
      expect(await ids({ ...all, reviewed: true })).toEqual({ ids: [c.id], total: 1 });
      expect((await ids({ ...all, reviewed: false })).total).toBe(3);
      expect(await ids({ ...all, needsReview: true })).toEqual({ ids: [b.id], total: 1 });
      expect((await ids({ ...all, needsReview: false })).total).toBe(3);
      // A literal substring in any case: "_" and "%" are not wildcards.
      expect((await ids({ ...all, file: 'alpha_' })).ids).toEqual([a.id]);
      expect((await ids({ ...all, file: 'ALPHA' })).ids).toEqual([d.id, a.id]);
      expect((await ids({ ...all, file: 'ta%2' })).ids).toEqual([b.id]);
      expect((await ids({ ...all, file: 'alpha%1' })).total).toBe(0);
      const iterated: string[] = [];
      for await (const x of store.iterate({ label: 'neutrophil', sort: 'oldest' })) iterated.push(x.id);
      expect(iterated).toEqual([a.id, c.id]);
      expect(await store.probabilityClasses()).toEqual(['eosinophil', 'lymphocyte', 'neutrophil', 'zeta']);
      const read = await store.get(c.id);
      // An image-level review is its first cell's.
      expect(read?.cells).toEqual([
        { ...cell('neutrophil', 0.7, false), review: expect.objectContaining({ label: 'monocyte' }) },
      ]);
      expect(read?.probabilities).toEqual({ neutrophil: 0.7, zeta: 0 });
    });

    it('iterates more cases than one page, each once, skipping those deleted meanwhile', async () => {
      const store = await open();
      const ids: string[] = [];
      for (let i = 0; i < 230; i++) {
        ids.push((await store.add(newCase(Buffer.from(`i${i}`), { heatmapPng: undefined }))).id);
      }
      const seen: string[] = [];
      for await (const x of store.iterate({ sort: 'oldest' })) {
        if (seen.length === 0) await store.delete(ids[229]);
        seen.push(x.id);
      }
      expect(seen).toEqual(ids.slice(0, 229));
    });

    it('refuses a database written by a newer schema instead of touching it', async () => {
      await (await open()).close();
      await backend.recordMigration(SCHEMA_VERSION + 1);
      const error = await backend.open().then(
        (s) => s.close().then(() => undefined),
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(HematoError);
      expect((error as HematoError).code).toBe('database_too_new');
    });

    it('keeps review reasons, and derives them for cases stored before reasons existed', async () => {
      const store = await open();
      const flagged = { ...prediction, needsReview: true, reviewReasons: ['unfamiliar_cell' as const] };
      const kept = await store.add({ ...newCase(Buffer.from('r1')), prediction: flagged });
      expect(await store.get(kept.id)).toMatchObject({
        needsReview: true,
        reviewReasons: ['unfamiliar_cell'],
      });
      // A schema-3 row: no reasons stored, an unflagged image whose second cell was flagged.
      const old = await store.add(newCase(Buffer.from('r2')));
      const { reviewReasons: _, ...legacyCell } = cell('neutrophil', 0.4, true);
      await backend.makeLegacyReasons(old.id, [{ ...legacyCell, needsReview: false }, legacyCell]);
      const c = (await store.get(old.id))!;
      expect(c.needsReview).toBe(true);
      expect(c.reviewReasons).toEqual(['low_confidence']);
      expect(c.cells.map((x) => x.reviewReasons)).toEqual([[], ['low_confidence']]);
      expect((await store.list({ limit: 10, offset: 0, needsReview: true })).total).toBe(2);
    });

    it('keeps heat-map data with the case and attaches the rendered map later', async () => {
      const store = await open();
      const c = await store.add(newCase(Buffer.from('img'), { heatmapPng: undefined, heatmapData }));
      expect(c).toMatchObject({ heatmapSha256: null, hasHeatmapData: true });
      expect(await store.readHeatmapData(c.id)).toEqual(heatmapData);
      expect(await store.readHeatmap(c)).toBeNull();
      const none = await store.add(newCase(Buffer.from('img2'), { heatmapPng: undefined }));
      expect(none).toMatchObject({ heatmapSha256: null, hasHeatmapData: false });
      expect(await store.readHeatmapData(none.id)).toBeNull();

      const png = Buffer.from('rendered png');
      const attached = await store.attachHeatmap(c.id, png);
      expect(attached?.heatmapSha256).toBe(sha(png));
      expect(await store.readHeatmap(attached!)).toEqual(png);
      expect((await store.get(c.id))?.heatmapSha256).toBe(sha(png));

      // A later, different render does not replace it, and is not kept.
      const other = await store.attachHeatmap(c.id, Buffer.from('another render'));
      expect(other?.heatmapSha256).toBe(sha(png));
      expect(await backend.hasBlob('heatmap', sha('another render'))).toBe(false);

      // A case deleted meanwhile: undefined, and its render is not kept.
      expect(await store.delete(none.id)).toBe(true);
      expect(await store.attachHeatmap(none.id, Buffer.from('orphan'))).toBeUndefined();
      expect(await backend.hasBlob('heatmap', sha('orphan'))).toBe(false);

      expect(await store.delete(c.id)).toBe(true);
      expect(await backend.hasBlob('heatmap', sha(png))).toBe(false);
    });

    it('lets concurrent renders of one case attach without corrupting anything', async () => {
      const store = await open();
      const c = await store.add(newCase(Buffer.from('img'), { heatmapPng: undefined, heatmapData }));
      const renders = [Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 2)];
      const results = await Promise.all(renders.map((png) => store.attachHeatmap(c.id, png)));
      const kept = (await store.get(c.id))?.heatmapSha256 as string;
      expect(results.map((r) => r?.heatmapSha256)).toEqual([kept, kept, kept]);
      const winner = renders.find((r) => sha(r) === kept) as Buffer;
      expect(winner).toBeDefined();
      expect((await store.readHeatmap((await store.get(c.id))!))?.equals(winner)).toBe(true);
      const loser = renders.find((r) => sha(r) !== kept) ?? renders[2];
      if (sha(loser) !== kept) expect(await backend.hasBlob('heatmap', sha(loser))).toBe(false);
    });
  });
}
