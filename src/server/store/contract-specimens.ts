/**
 * The specimen half of the CaseStore contract (contract.ts runs it in every store's suite): specimens,
 * per-cell reviews, the specimen filter and version, signed report revisions with their frozen bytes.
 */
import { expect, it } from 'vitest';
import type { CellPrediction, ImagePrediction } from '../../model/types.js';
import type { CaseStore, NewCase } from './types.js';

function flaggedCell(x: number, needsReview: boolean): CellPrediction {
  return {
    box: { x, y: 0, width: 4, height: 4, score: 1 },
    label: 'lymphocyte',
    confidence: needsReview ? 0.4 : 0.9,
    probabilities: { lymphocyte: needsReview ? 0.4 : 0.9 },
    needsReview,
    reviewReasons: needsReview ? ['low_confidence'] : [],
  };
}

/** A field of three cells, the first and last flagged. */
const field: ImagePrediction = {
  label: 'lymphocyte',
  confidence: 0.4,
  probabilities: { lymphocyte: 0.4 },
  needsReview: true,
  reviewReasons: ['low_confidence'],
  cells: [flaggedCell(0, true), flaggedCell(10, false), flaggedCell(20, true)],
};

export function specimenContract(
  open: () => Promise<CaseStore>,
  newCase: (image: Buffer, extra?: Partial<NewCase>) => NewCase,
): void {
  it('stores specimens with an id unique in any case, finds them in any case, lists, searches and sorts them', async () => {
    const store = await open();
    const a = await store.addSpecimen({
      id: 'S-10',
      source: 'Ward 4',
      note: 'a 100% note',
      targetCount: 100,
    });
    expect(a).toEqual({
      id: 'S-10',
      source: 'Ward 4',
      note: 'a 100% note',
      targetCount: 100,
      createdAt: expect.any(String),
      updatedAt: a?.createdAt,
      version: 0,
      imageCount: 0,
      cellCount: 0,
      clinic: null,
      deleted: null,
    });
    expect(new Date(a!.createdAt).toISOString()).toBe(a!.createdAt);
    expect(await store.addSpecimen({ id: 's-10', targetCount: 200 })).toBeUndefined();
    expect((await store.getSpecimen('s-10'))?.id).toBe('S-10');
    expect(await store.getSpecimen('S-11')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2));
    await store.addSpecimen({ id: 'a-2', targetCount: 200 });
    await store.addSpecimen({ id: 'B-3', note: 'ward 4 again', targetCount: 100 });

    const ids = async (filter: Partial<Parameters<CaseStore['listSpecimens']>[0]>) => {
      const page = await store.listSpecimens({ limit: 10, offset: 0, ...filter });
      return [page.specimens.map((s) => s.id), page.total];
    };
    expect(await ids({})).toEqual([['B-3', 'a-2', 'S-10'], 3]);
    expect(await ids({ sort: 'oldest' })).toEqual([['S-10', 'a-2', 'B-3'], 3]);
    expect(await ids({ sort: 'id' })).toEqual([['a-2', 'B-3', 'S-10'], 3]);
    expect(await ids({ search: 'WARD 4' })).toEqual([['B-3', 'S-10'], 2]);
    expect(await ids({ search: '%' })).toEqual([['S-10'], 1]); // a literal %, not a wildcard
    expect(await ids({ search: 's-1' })).toEqual([['S-10'], 1]);
    expect(await ids({ limit: 1, offset: 1 })).toEqual([['a-2'], 3]);
  });

  it('files cases under a specimen, counts its images and cells, and grows its version with every change', async () => {
    const store = await open();
    await store.addSpecimen({ id: 'Slide-1', targetCount: 100 });
    await store.addSpecimen({ id: 'Slide-2', targetCount: 100 });
    const one = await store.add(newCase(Buffer.from('f1'), { prediction: field, specimenId: 'Slide-1' }));
    expect(one.specimenId).toBe('Slide-1');
    const empty = { ...field, label: null, cells: [] };
    await store.add(newCase(Buffer.from('f2'), { prediction: empty, specimenId: 'Slide-1' }));
    const other = await store.add(newCase(Buffer.from('f3'), { specimenId: 'Slide-2' }));
    const loose = await store.add(newCase(Buffer.from('f4')));
    expect(loose.specimenId).toBeNull();
    // A field without cells counts as one.
    expect(await store.getSpecimen('slide-1')).toMatchObject({ imageCount: 2, cellCount: 4, version: 2 });
    const before = (await store.getSpecimen('Slide-1'))!;

    const inIt = await store.list({ specimen: 'SLIDE-1', limit: 10, offset: 0, sort: 'oldest' });
    expect(inIt.total).toBe(2);
    expect(inIt.cases[0].id).toBe(one.id);
    const all = [];
    for await (const c of store.iterate({ specimen: ' slide-2 ' })) all.push(c.id);
    expect(all).toEqual([other.id]);
    expect((await store.list({ specimen: 'nope', limit: 10, offset: 0 })).total).toBe(0);

    await new Promise((r) => setTimeout(r, 2));
    await store.addReview(one.id, { label: 'monocyte', reviewer: 'Dr A', cell: 2 });
    const reviewed = (await store.getSpecimen('Slide-1'))!;
    expect(reviewed.version).toBe(3);
    expect(reviewed.updatedAt > before.updatedAt).toBe(true);
    await store.delete(one.id);
    expect(await store.getSpecimen('Slide-1')).toMatchObject({ imageCount: 1, cellCount: 1, version: 4 });
    expect((await store.getSpecimen('Slide-2'))?.version).toBe(1); // untouched by the others
    // A specimen that is not stored: refused, nothing stored.
    await expect(store.add(newCase(Buffer.from('f5'), { specimenId: 'Slide-9' }))).rejects.toThrow();
    expect((await store.list({ limit: 10, offset: 0 })).total).toBe(3);
  });

  it('reviews cell by cell: the latest review per cell, the image flag and filter follow the flagged cells', async () => {
    const store = await open();
    const c = await store.add(newCase(Buffer.from('cells'), { prediction: field }));
    const unflagged = await store.add(newCase(Buffer.from('plain')));
    const flaggedIds = async () =>
      (await store.list({ needsReview: true, limit: 10, offset: 0 })).cases.map((x) => x.id);
    const clearIds = async () =>
      (await store.list({ needsReview: false, limit: 10, offset: 0 })).cases.map((x) => x.id);
    expect(c.needsReview).toBe(true);
    expect(c.cells.map((x) => [x.needsReview, x.review])).toEqual([
      [true, null],
      [false, null],
      [true, null],
    ]);
    expect(await flaggedIds()).toEqual([c.id]);

    const r1 = await store.addReview(c.id, { label: 'neutrophil', reviewer: 'Dr A', cell: 0 });
    expect(r1?.needsReview).toBe(true); // cell 2 is still open
    expect(r1?.cells[0]).toMatchObject({
      needsReview: false,
      review: { label: 'neutrophil', reviewer: 'Dr A' },
    });
    expect(await flaggedIds()).toEqual([c.id]);
    await store.addReview(c.id, { label: 'basophil', reviewer: 'Dr B', note: 'again', cell: 0 });
    const r2 = await store.addReview(c.id, { label: 'monocyte', reviewer: 'Dr B', cell: 2 });
    expect(r2?.needsReview).toBe(false);
    expect(r2?.review).toMatchObject({ label: 'monocyte', reviewer: 'Dr B' }); // the latest of any cell
    expect(r2?.cells.map((x) => [x.needsReview, x.review?.label ?? null, x.review?.note ?? null])).toEqual([
      [false, 'basophil', 'again'],
      [false, null, null],
      [false, 'monocyte', ''],
    ]);
    expect(r2?.reviewReasons).toEqual(['low_confidence']); // why the model flagged it, reviewed or not
    expect(await flaggedIds()).toEqual([]);
    expect((await clearIds()).sort()).toEqual([c.id, unflagged.id].sort());
    expect((await store.reviews(c.id)).map((r) => [r.cell, r.label])).toEqual([
      [0, 'neutrophil'],
      [0, 'basophil'],
      [2, 'monocyte'],
    ]);
    expect((await store.get(c.id))?.cells[0].review?.reviewedAt).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);

    // An image flagged for itself (no cell) needs review until anyone reviewed it; a default review is cell 0's.
    const noCell = await store.add(
      newCase(Buffer.from('none'), {
        prediction: { ...field, label: null, cells: [], reviewReasons: ['no_cell'] },
      }),
    );
    expect(await flaggedIds()).toEqual([noCell.id]);
    const done = await store.addReview(noCell.id, { label: 'artefact', reviewer: 'Dr C' });
    expect(done?.needsReview).toBe(false);
    expect((await store.reviews(noCell.id))[0].cell).toBe(0);
    expect(await flaggedIds()).toEqual([]);
  });

  it('edits a specimen’s own fields (its version grows only on a change) in any case of its id', async () => {
    const store = await open();
    await store.addSpecimen({ id: 'Ed-1', source: 'Ward 1', targetCount: 100 });
    const same = await store.updateSpecimen('ed-1', { source: 'Ward 1', note: null, targetCount: 100 });
    expect(same).toMatchObject({ id: 'Ed-1', version: 0 }); // nothing changed: a signed report stays current
    await new Promise((r) => setTimeout(r, 2));
    const edited = await store.updateSpecimen('ED-1', { source: null, note: 'haemolysed', targetCount: 200 });
    expect(edited).toMatchObject({
      id: 'Ed-1',
      source: null,
      note: 'haemolysed',
      targetCount: 200,
      version: 1,
    });
    expect(edited!.updatedAt > edited!.createdAt).toBe(true);
    expect(await store.getSpecimen('Ed-1')).toEqual(edited);
    expect(
      await store.updateSpecimen('Ed-9', { source: null, note: null, targetCount: 100 }),
    ).toBeUndefined();
  });

  it('soft-deletes only a specimen without images, hides it from lists, and restores it', async () => {
    const store = await open();
    await store.addSpecimen({ id: 'Del-1', targetCount: 100 });
    await store.addSpecimen({ id: 'Del-2', targetCount: 100 });
    const c = await store.add(newCase(Buffer.from('d1'), { specimenId: 'Del-2' }));
    const by = { actor: 'boss', reason: 'typed twice' };

    // Its images are never lost with it: refused while it holds one, and nothing changed.
    expect(await store.softDeleteSpecimen('del-2', by)).toBe('has_images');
    expect((await store.getSpecimen('Del-2'))?.deleted).toBeNull();
    expect((await store.get(c.id))?.specimenId).toBe('Del-2');

    expect(await store.softDeleteSpecimen('DEL-1', by)).toBe('deleted');
    expect(await store.softDeleteSpecimen('Del-1', by)).toBe('not_found'); // once
    expect(await store.softDeleteSpecimen('Del-9', by)).toBe('not_found');
    expect((await store.getSpecimen('Del-1'))?.deleted).toEqual({
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      by: 'boss',
      reason: 'typed twice',
    });
    const list = await store.listSpecimens({ limit: 10, offset: 0 });
    expect([list.specimens.map((s) => s.id), list.total]).toEqual([['Del-2'], 1]);
    expect(
      await store.updateSpecimen('Del-1', { source: 'x', note: null, targetCount: 100 }),
    ).toBeUndefined();
    // The id stays taken while deleted (a restore must find it free).
    expect(await store.addSpecimen({ id: 'del-1', targetCount: 100 })).toBeUndefined();

    expect(await store.restoreSpecimen('del-1')).toBe(true);
    expect(await store.restoreSpecimen('Del-1')).toBe(false);
    expect((await store.getSpecimen('Del-1'))?.deleted).toBeNull();
    expect((await store.listSpecimens({ limit: 10, offset: 0 })).total).toBe(2);

    // A specimen whose images were all deleted can go; restoring it keeps them pointing at it.
    await store.softDelete(c.id, by);
    expect(await store.softDeleteSpecimen('Del-2', by)).toBe('deleted');
    expect((await store.get(c.id))?.specimenId).toBe('Del-2');
  });

  it('freezes signed report revisions with their bytes; a revision is signed once', async () => {
    const store = await open();
    await store.addSpecimen({ id: 'Sig-1', targetCount: 100 });
    await store.addSpecimen({ id: 'Sig-2', targetCount: 100 });
    expect(await store.signoffs('Sig-1')).toEqual([]);
    const pdf = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x0a]);
    const signedAt = '2026-03-04T05:06:07.089Z';
    const first = { revision: 1, reviewer: 'Dr A', signedAt, specimenVersion: 0 };
    expect(await store.addSignoff('Sig-1', { ...first, pdf })).toBe(true);
    expect(await store.addSignoff('Sig-1', { ...first, reviewer: 'Dr B', pdf: Buffer.from('x') })).toBe(
      false,
    );
    expect(await store.addSignoff('Sig-1', { ...first, revision: 2, specimenVersion: 3, pdf })).toBe(true);
    expect(await store.signoffs('Sig-1')).toEqual([first, { ...first, revision: 2, specimenVersion: 3 }]);
    expect(await store.readSignedReport('Sig-1', 1)).toEqual(pdf);
    expect(await store.readSignedReport('Sig-1', 3)).toBeNull();
    expect(await store.readSignedReport('Sig-2', 1)).toBeNull();
    expect(await store.signoffs('Sig-2')).toEqual([]);
  });
}
