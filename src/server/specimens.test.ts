import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CaseJson, SpecimenDetailJson } from '../api/index.js';
import { buildApp } from './app.js';
import { BACKENDS, databasePerDescribe, databaseUrl, emptyDatabase } from '../testing/backends.js';
import { notePostgresSkip } from '../testing/postgres.js';
import { fakeVision, multipart, parseCsv, solidJpeg, solidPng, type UploadFile } from '../testing/server.js';
import { hasTool } from '../testing/tools.js';

const API = '/api/v1';

const havePdftotext = hasTool('pdftotext');
if (!havePdftotext)
  console.warn('[skipped] report PDF text: needs pdftotext (apt-get install poppler-utils)');

function pdfText(pdf: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'hv-specimen-pdf-'));
  try {
    writeFileSync(join(dir, 'r.pdf'), pdf);
    return execFileSync('pdftotext', ['-layout', join(dir, 'r.pdf'), '-'], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

notePostgresSkip('specimens API on PostgreSQL');

/** Every test runs on SQLite, and again on PostgreSQL when a test server answers (testing/backends.ts). */
let dataDir: string;
let app: FastifyInstance;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-specimens-'));
  await emptyDatabase();
  app = await buildApp({
    auth: 'off',
    vision: fakeVision(),
    dataDir,
    databaseUrl,
    webDir: join(dataDir, 'no-web'),
  });
});

afterEach(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function createSpecimen(body: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: `${API}/specimens`, payload: body });
}

async function predictInto(specimen: string, files: UploadFile[]) {
  return app.inject({
    method: 'POST',
    url: `${API}/predict?specimen=${encodeURIComponent(specimen)}`,
    ...(await multipart(files)),
  });
}

async function detail(id: string): Promise<SpecimenDetailJson> {
  const res = await app.inject(`${API}/specimens/${encodeURIComponent(id)}`);
  expect(res.statusCode).toBe(200);
  return res.json() as SpecimenDetailJson;
}

/** A grey field: two cells in the fake model, an eosinophil at 0.55 (flagged) and a lymphocyte at 0.8. */
const greyField = async (name: string): Promise<UploadFile> => ({
  name,
  bytes: await solidPng(120, 80, [128, 128, 128]),
});
/** A red single-cell image: a neutrophil at 0.9, analysed as one cell. */
const redCell = async (name: string): Promise<UploadFile> => ({
  name,
  bytes: await solidJpeg(32, 32, [220, 30, 30]),
});

async function review(caseId: string, cell: number, label: string, reviewer = 'Dr A') {
  return app.inject({
    method: 'POST',
    url: `${API}/cases/${caseId}/cells/${cell}/review`,
    payload: { reviewLabel: label, reviewer },
  });
}

describe.each(BACKENDS)('specimens API on $name', ({ postgres }) => {
  databasePerDescribe(postgres, 'specimens_api');

  it('creates a specimen (trimmed id, 409 for a duplicate whatever its case) and lists and searches them', async () => {
    const res = await createSpecimen({ id: '  SPEC-001 ', source: 'Ward 7', targetCount: 200 });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ id: 'SPEC-001', source: 'Ward 7', note: null, targetCount: 200 });
    expect(res.headers.location).toBe(`${API}/specimens/SPEC-001`);
    const dup = await createSpecimen({ id: 'spec-001' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ error: 'specimen_exists' });
    expect(dup.json().message).toContain('exists already');
    for (const bad of [
      { id: '   ' },
      { id: 'x'.repeat(65) },
      { id: 'A', targetCount: 150 },
      { id: 'A', x: 1 },
    ]) {
      const r = await createSpecimen(bad);
      expect(r.statusCode, JSON.stringify(bad)).toBe(400);
    }
    expect((await createSpecimen({ id: 'x'.repeat(64), note: 'clinic B' })).statusCode).toBe(201);
    const list = (await app.inject(`${API}/specimens?search=CLINIC`)).json();
    expect(list.total).toBe(1);
    expect(list.specimens[0].id).toBe('x'.repeat(64));
    expect((await app.inject(`${API}/specimens?sort=oldest`)).json().specimens[0].id).toBe('SPEC-001');
    expect((await app.inject(`${API}/specimens?colour=red`)).statusCode).toBe(400);
  });

  it('edits a specimen’s source, note and target (not its id); a change makes the signed report a new revision', async () => {
    await createSpecimen({ id: 'E-1', source: 'Ward 7' });
    await predictInto('E-1', [await redCell('r.jpg')]);
    const patch = (id: string, payload: Record<string, unknown>) =>
      app.inject({ method: 'PATCH', url: `${API}/specimens/${encodeURIComponent(id)}`, payload });
    const sign = () =>
      app.inject({ method: 'POST', url: `${API}/specimens/E-1/sign`, payload: { reviewer: 'Dr A' } });
    expect((await sign()).statusCode).toBe(201);

    const edited = await patch('e-1', { note: ' haemolysed ', targetCount: 200 });
    expect(edited.statusCode).toBe(200);
    expect(edited.json()).toMatchObject({
      id: 'E-1',
      source: 'Ward 7',
      note: 'haemolysed',
      targetCount: 200,
    });
    let d = await detail('E-1');
    expect(d.specimen).toMatchObject({ note: 'haemolysed', targetCount: 200, imageCount: 1 });
    expect(d.progress.target).toBe(200);
    expect([d.revision, d.signed]).toEqual([2, false]); // the report shows these fields
    expect((await sign()).json().revision).toBe(2);
    // The values it has already: nothing changes, the signed revision stays current.
    expect((await patch('E-1', { note: 'haemolysed', targetCount: 200 })).statusCode).toBe(200);
    d = await detail('E-1');
    expect([d.revision, d.signed]).toEqual([2, true]);
    // A blank field clears it, as null does.
    expect((await patch('E-1', { source: '  ', note: null })).json()).toMatchObject({
      source: null,
      note: null,
    });

    for (const bad of [
      {},
      { id: 'E-2' },
      { targetCount: 150 },
      { note: 'x'.repeat(4001) },
      { source: { text: 'Ward 7' } },
      { colour: 'red' },
    ]) {
      const r = await patch('E-1', bad);
      expect(r.statusCode, JSON.stringify(bad)).toBe(400);
    }
    expect((await detail('E-1')).specimen).toMatchObject({ id: 'E-1', source: null, targetCount: 200 });
    const missing = await patch('NOPE-1', { note: 'x' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'specimen_not_found' });
  });

  it('deletes only a specimen without images, softly and with a reason; restoring brings it back', async () => {
    await createSpecimen({ id: 'D-1' });
    const [img] = (await predictInto('D-1', [await redCell('r.jpg')])).json().cases as CaseJson[];
    const del = (
      id: string,
      payload: Record<string, unknown> | null = { reason: 'typed on the wrong slide' },
    ) =>
      app.inject({
        method: 'DELETE',
        url: `${API}/specimens/${encodeURIComponent(id)}`,
        ...(payload === null ? {} : { payload }), // null: no body at all
      });

    // Its image is a result filed under this slide: never dropped or orphaned with it.
    const refused = await del('d-1');
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: 'specimen_not_empty' });
    expect(refused.json().message).toContain('holds an image');
    expect((await app.inject(`${API}/cases/${img.id}`)).json()).toMatchObject({ specimen: 'D-1' });
    expect((await detail('D-1')).specimen.imageCount).toBe(1);
    for (const bad of [null, {}, { reason: '   ' }, { reason: 'x', also: 1 }]) {
      expect((await del('D-1', bad)).statusCode, JSON.stringify(bad)).toBe(400);
    }

    const gone = await app.inject({
      method: 'DELETE',
      url: `${API}/cases/${img.id}`,
      payload: { reason: 'blurred' },
    });
    expect(gone.statusCode).toBe(204);
    expect((await del('D-1')).statusCode).toBe(204);
    expect((await del('D-1')).statusCode).toBe(404); // once
    expect((await del('NOPE-2')).statusCode).toBe(404);
    // Gone from every view and from uploads; its id stays taken, so a restore finds it free.
    expect((await app.inject(`${API}/specimens/D-1`)).statusCode).toBe(404);
    expect((await app.inject(`${API}/specimens/D-1/report.pdf`)).statusCode).toBe(404);
    expect((await app.inject(`${API}/specimens`)).json()).toMatchObject({ total: 0 });
    expect((await predictInto('D-1', [await redCell('x.jpg')])).statusCode).toBe(404);
    const again = await createSpecimen({ id: 'd-1' });
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toContain('was deleted');
    // Its image comes back only with it.
    const early = await app.inject({ method: 'POST', url: `${API}/cases/${img.id}/restore` });
    expect(early.statusCode).toBe(409);
    expect(early.json()).toMatchObject({ error: 'specimen_deleted' });

    const back = await app.inject({ method: 'POST', url: `${API}/specimens/d-1/restore` });
    expect(back.statusCode).toBe(200);
    expect(back.json()).toMatchObject({ id: 'D-1', imageCount: 0 });
    expect((await app.inject({ method: 'POST', url: `${API}/specimens/D-1/restore` })).statusCode).toBe(409);
    expect((await app.inject({ method: 'POST', url: `${API}/specimens/NOPE-2/restore` })).statusCode).toBe(
      404,
    );
    expect((await app.inject({ method: 'POST', url: `${API}/cases/${img.id}/restore` })).statusCode).toBe(
      200,
    );
    expect((await detail('D-1')).specimen.imageCount).toBe(1);
  });

  it('uploads into a specimen: the differential grows and persists; an unknown specimen stores nothing', async () => {
    await createSpecimen({ id: 'S 1/a' });
    const first = await predictInto('S 1/a', [await greyField('f1.png'), await redCell('r1.jpg')]);
    expect(first.statusCode).toBe(200);
    const cases = first.json().cases as CaseJson[];
    expect(cases.map((c) => c.specimen)).toEqual(['S 1/a', 'S 1/a']);

    let d = await detail('s 1/A'); // any case
    expect(d.specimen).toMatchObject({ id: 'S 1/a', imageCount: 2, cellCount: 3, targetCount: 100 });
    expect(d.differential.counts).toMatchObject({ eosinophil: 1, lymphocyte: 1, neutrophil: 1 });
    expect(d.differential.total).toBe(3);
    expect(d.progress).toEqual({ counted: 3, target: 100, percent: 3 });
    expect(d.needsReview).toBe(1);
    expect(d.queue.map((i) => [d.cells[i].file, d.cells[i].cell, d.cells[i].label])).toEqual([
      ['f1.png', 0, 'eosinophil'],
    ]);

    await predictInto('S 1/a', [await greyField('f2.png')]);
    d = await detail('S 1/a');
    expect(d.differential.counts).toMatchObject({ eosinophil: 2, lymphocyte: 2, neutrophil: 1 });
    expect(d.differential.percentages.lymphocyte).toBeCloseTo(40);
    expect(d.needsReview).toBe(2);

    // Cases of other specimens and of none stay out of it; the history filters by specimen.
    await createSpecimen({ id: 'OTHER' });
    await predictInto('OTHER', [await redCell('o.jpg')]);
    await app.inject({
      method: 'POST',
      url: `${API}/predict`,
      ...(await multipart([await redCell('n.jpg')])),
    });
    expect((await detail('S 1/a')).differential.total).toBe(5);
    const inIt = (await app.inject(`${API}/cases?specimen=${encodeURIComponent('S 1/A')}`)).json();
    expect(inIt.total).toBe(3);

    const before = (await app.inject(`${API}/cases`)).json().total;
    const unknown = await predictInto('NOPE-9', [await redCell('x.jpg')]);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'specimen_not_found' });
    expect(unknown.json().message).toContain('"NOPE-9"');
    expect((await app.inject(`${API}/cases`)).json().total).toBe(before);
    expect((await app.inject(`${API}/specimens/NOPE-9`)).statusCode).toBe(404);
    const typo = await app.inject({
      method: 'POST',
      url: `${API}/predict?specimn=S`,
      ...(await multipart([await redCell('x.jpg')])),
    });
    expect(typo.statusCode).toBe(400);
    expect((await app.inject(`${API}/cases`)).json().total).toBe(before);
  });

  it('reviews cell by cell: only that cell changes, and the image and specimen flags follow', async () => {
    await createSpecimen({ id: 'R1' });
    const [field] = (await predictInto('R1', [await greyField('f.png')])).json().cases as CaseJson[];
    expect(field.needsReview).toBe(true);
    expect(field.cells.map((c) => c.needsReview)).toEqual([true, false]);

    // Confirming the unflagged cell leaves the flagged one (and the image) needing review.
    let res = await review(field.id, 1, 'lymphocyte');
    expect(res.statusCode).toBe(200);
    let c = res.json() as CaseJson;
    expect(c.cells.map((x) => x.review?.label ?? null)).toEqual([null, 'lymphocyte']);
    expect(c.needsReview).toBe(true);
    expect((await app.inject(`${API}/cases?needsReview=true`)).json().total).toBe(1);

    // Correcting the flagged cell: the image no longer needs review; the specimen counts the correction.
    res = await review(field.id, 0, 'neutrophil');
    c = res.json() as CaseJson;
    expect(c.cells.map((x) => [x.label, x.review?.label, x.needsReview])).toEqual([
      ['eosinophil', 'neutrophil', false],
      ['lymphocyte', 'lymphocyte', false],
    ]);
    expect(c.needsReview).toBe(false);
    expect((await app.inject(`${API}/cases?needsReview=true`)).json().total).toBe(0);
    const d = await detail('R1');
    expect(d.differential.counts).toMatchObject({ eosinophil: 0, neutrophil: 1, lymphocyte: 1 });
    expect(d.needsReview).toBe(0);
    expect(d.queue).toEqual([]);

    // "not a white cell" is counted in no class.
    await review(field.id, 1, 'not_a_white_cell');
    const d2 = await detail('R1');
    expect(d2.differential.total).toBe(1);
    expect(d2.unclassified).toBe(1);

    // History: each review with its cell; the image-level PATCH of older clients reviews cell 0.
    await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${field.id}`,
      payload: { reviewLabel: 'monocyte', reviewer: 'Old client' },
    });
    const full = (await app.inject(`${API}/cases/${field.id}`)).json();
    expect(full.reviews.map((r: { cell: number; label: string }) => [r.cell, r.label])).toEqual([
      [1, 'lymphocyte'],
      [0, 'neutrophil'],
      [1, 'not_a_white_cell'],
      [0, 'monocyte'],
    ]);
    expect(full.cells[0].review.label).toBe('monocyte');
    expect(full.cells[1].review.label).toBe('not_a_white_cell');

    // A cell the case does not have, and a malformed index.
    const missing = await review(field.id, 2, 'monocyte');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toContain('2 cells');
    expect((await review(field.id, -1, 'monocyte')).statusCode).toBe(400);
    expect((await review(field.id, 0, 'platypus')).statusCode).toBe(400);
  });

  it('serves each cell’s crop as a PNG of at most 160 px', async () => {
    await createSpecimen({ id: 'C1' });
    const [field, single] = (
      await predictInto('C1', [await greyField('f.png'), await redCell('r.jpg')])
    ).json().cases as CaseJson[];
    const crop = await app.inject(`${API}/cases/${field.id}/cells/1/crop.png`);
    expect(crop.statusCode).toBe(200);
    expect(crop.headers['content-type']).toBe('image/png');
    const meta = await sharp(crop.rawPayload).metadata();
    // The fake's second box is 40 px square: a 20% margin each side makes 56 px.
    expect([meta.width, meta.height]).toEqual([56, 56]);
    const whole = await sharp(
      (await app.inject(`${API}/cases/${single.id}/cells/0/crop.png`)).rawPayload,
    ).metadata();
    expect([whole.width, whole.height]).toEqual([32, 32]);
    expect((await app.inject(`${API}/cases/${single.id}/cells/1/crop.png`)).statusCode).toBe(404);
  });

  it('exports a specimen’s cells as CSV: one row per cell, each with its own review and the specimen', async () => {
    await createSpecimen({ id: 'CSV-1' });
    const [field] = (await predictInto('CSV-1', [await greyField('f.png'), await redCell('r.jpg')])).json()
      .cases as CaseJson[];
    await app.inject({
      method: 'POST',
      url: `${API}/predict`,
      ...(await multipart([await redCell('other.jpg')])),
    });
    await review(field.id, 1, 'monocyte', 'Dr B');
    const res = await app.inject(`${API}/specimens/csv-1/cells.csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toContain('hematovision-CSV-1-cells.csv');
    const [header, ...rows] = parseCsv(res.body);
    const all = parseCsv((await app.inject(`${API}/cases.csv`)).body);
    expect(header).toEqual(all[0]);
    const byCol = rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
    expect(byCol.map((r) => [r.file, r.cell, r.label, r.reviewLabel, r.reviewer, r.specimen])).toEqual([
      ['f.png', '1', 'eosinophil', '', '', 'CSV-1'],
      ['f.png', '2', 'lymphocyte', 'monocyte', 'Dr B', 'CSV-1'],
      ['r.jpg', '', 'neutrophil', '', '', 'CSV-1'],
    ]);
    expect(
      all
        .slice(1)
        .find((r) => r[1] === 'other.jpg')
        ?.at(-1),
    ).toBe('');
  });

  it('reports as PDF; a signed revision is frozen and later changes make a new one', async () => {
    await createSpecimen({ id: 'REP-7', source: 'Ward 7' });
    const [field] = (await predictInto('REP-7', [await greyField('f.png'), await redCell('r.jpg')])).json()
      .cases as CaseJson[];
    await review(field.id, 0, 'neutrophil');

    const draft = await app.inject(`${API}/specimens/REP-7/report.pdf`);
    expect(draft.statusCode).toBe(200);
    expect(draft.headers['content-type']).toBe('application/pdf');
    expect(draft.headers['content-disposition']).toContain('hematovision-REP-7-r1-draft.pdf');
    if (havePdftotext) {
      const text = pdfText(draft.rawPayload);
      expect(text).toContain('REP-7');
      expect(text).toContain('NOT SIGNED');
      expect(text).toContain('fake-wbc');
      expect(text).toContain('0'.repeat(64)); // the loaded model's sha256: every case is its
      expect(text).toContain('Corrected'); // the corrected cell, in the gallery
      expect(text).toContain('Model: Eosinophil 55%');
    }

    const signed = await app.inject({
      method: 'POST',
      url: `${API}/specimens/rep-7/sign`,
      payload: { reviewer: '  Dr A. Morales ' },
    });
    expect(signed.statusCode).toBe(201);
    expect(signed.json()).toMatchObject({
      revision: 1,
      reviewer: 'Dr A. Morales',
      reportUrl: `${API}/specimens/REP-7/report.pdf?revision=1`,
    });
    const again = await app.inject({
      method: 'POST',
      url: `${API}/specimens/REP-7/sign`,
      payload: { reviewer: 'X' },
    });
    expect(again.statusCode).toBe(409);

    const current = await app.inject(`${API}/specimens/REP-7/report.pdf`);
    const r1 = await app.inject(`${API}/specimens/REP-7/report.pdf?revision=1`);
    expect(r1.headers['content-disposition']).toContain('hematovision-REP-7-r1.pdf');
    expect(current.rawPayload.equals(r1.rawPayload)).toBe(true);
    if (havePdftotext) expect(pdfText(r1.rawPayload)).toContain('Signed off by Dr A. Morales');
    let d = await detail('REP-7');
    expect([d.revision, d.signed, d.signoffs.length]).toEqual([1, true, 1]);

    // A later review: the report is a draft of revision 2; revision 1 stays as it was signed.
    await review(field.id, 1, 'monocyte');
    d = await detail('REP-7');
    expect([d.revision, d.signed]).toEqual([2, false]);
    const next = await app.inject(`${API}/specimens/REP-7/report.pdf`);
    expect(next.headers['content-disposition']).toContain('r2-draft');
    const r1Again = await app.inject(`${API}/specimens/REP-7/report.pdf?revision=1`);
    expect(r1Again.rawPayload.equals(r1.rawPayload)).toBe(true);
    expect((await app.inject(`${API}/specimens/REP-7/report.pdf?revision=2`)).statusCode).toBe(404);
    expect((await app.inject(`${API}/specimens/NOPE/report.pdf`)).statusCode).toBe(404);

    const s2 = await app.inject({
      method: 'POST',
      url: `${API}/specimens/REP-7/sign`,
      payload: { reviewer: 'Dr B' },
    });
    expect(s2.json().revision).toBe(2);
    // On PostgreSQL the data folder holds upload temp files only.
    if (postgres) expect(readdirSync(dataDir)).toEqual(['tmp']);
    else expect(readdirSync(dataDir)).toContain('hematovision.db');
  });
});
