/** The case routes: listing, search, reviews, deletion, CSV export and persistence across restarts. */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXTRA_REVIEW_LABELS } from '../../api/index.js';
import { openStore, type SqliteCaseStore } from '../store/index.js';
import { MIGRATIONS } from '../store/migrations.js';
import {
  API,
  app,
  type CaseBody,
  dataDir,
  errorOf,
  freshAppPerTest,
  predict,
  start,
} from '../../testing/app.js';
import { FAKE_CARD, parseCsv, solidJpeg, solidPng } from '../../testing/server.js';

freshAppPerTest();

describe('cases', () => {
  async function seed(): Promise<CaseBody[]> {
    const files = [
      { name: 'n1.jpg', bytes: await solidJpeg(16, 16, [220, 30, 30]) },
      { name: 'm1.jpg', bytes: await solidJpeg(16, 16, [30, 30, 220]) },
      { name: 'n2.jpg', bytes: await solidJpeg(18, 16, [220, 30, 30]) },
    ];
    const out: CaseBody[] = [];
    // One request per image so createdAt differs and the order is testable.
    for (const f of files) out.push(((await predict([f])).json() as { cases: CaseBody[] }).cases[0]);
    return out;
  }

  it('lists newest first with label, reviewed, limit and offset', async () => {
    await start();
    const [n1, m1, n2] = await seed();
    const all = (await app.inject(`${API}/cases`)).json() as { cases: CaseBody[]; total: number };
    expect(all.total).toBe(3);
    expect(all.cases.map((c) => c.id)).toEqual([n2.id, m1.id, n1.id]);
    const neut = (await app.inject(`${API}/cases?label=neutrophil`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(neut.cases.map((c) => c.id)).toEqual([n2.id, n1.id]);
    const page = (await app.inject(`${API}/cases?limit=1&offset=1`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(page).toMatchObject({ total: 3, cases: [{ id: m1.id }] });

    await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${m1.id}`,
      payload: { reviewLabel: 'monocyte', reviewer: 'ana' },
    });
    const reviewed = (await app.inject(`${API}/cases?reviewed=true`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(reviewed.cases.map((c) => c.id)).toEqual([m1.id]);
    expect(reviewed.cases[0].review?.label).toBe('monocyte');
    const unreviewed = (await app.inject(`${API}/cases?reviewed=false`)).json() as { total: number };
    expect(unreviewed.total).toBe(2);

    for (const q of ['limit=0', 'limit=201', 'offset=-1', 'reviewed=maybe', 'limit=abc']) {
      const res = await app.inject(`${API}/cases?${q}`);
      expect([q, res.statusCode, errorOf(res).error]).toEqual([q, 400, 'invalid_request']);
    }
  });

  it('finds cases by part of the file name and sorts them', async () => {
    await start();
    const [n1, m1, n2] = await seed();
    const grey = (
      (
        await predict([{ name: 'Smear_100%.jpg', bytes: await solidJpeg(16, 16, [128, 128, 128]) }])
      ).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const list = async (q: string) =>
      ((await app.inject(`${API}/cases?${q}`)).json() as { cases: CaseBody[] }).cases.map((c) => c.id);
    expect(await list('file=N1')).toEqual([n1.id]); // any case
    expect(await list('file=.jpg')).toHaveLength(4);
    // LIKE's wildcards are taken literally.
    expect(await list(`file=${encodeURIComponent('_100%')}`)).toEqual([grey.id]);
    expect(await list('file=%25')).toEqual([grey.id]);
    expect(await list('sort=oldest')).toEqual([n1.id, m1.id, n2.id, grey.id]);
    expect((await list('sort=least-confident'))[0]).toBe(grey.id);
    expect((await app.inject(`${API}/cases?sort=random`)).statusCode).toBe(400);
    const csv = parseCsv((await app.inject(`${API}/cases.csv?file=m1&sort=oldest`)).body);
    expect(csv.slice(1).map((r) => r[0])).toEqual([m1.id]);
  });

  it('filters by needsReview, and refuses unknown query parameters instead of ignoring them', async () => {
    await start();
    const [n1] = await seed();
    // Grey: low confidence in the fake pipeline.
    const grey = (
      (await predict([{ name: 'g.jpg', bytes: await solidJpeg(16, 16, [128, 128, 128]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    expect(grey.needsReview).toBe(true);
    const flagged = (await app.inject(`${API}/cases?needsReview=true`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(flagged.cases.map((c) => c.id)).toEqual([grey.id]);
    const fine = (await app.inject(`${API}/cases?needsReview=false`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(fine.total).toBe(3);
    expect(fine.cases.map((c) => c.id)).toContain(n1.id);
    const csv = parseCsv((await app.inject(`${API}/cases.csv?needsReview=true`)).body);
    expect(csv.slice(1).map((r) => r[0])).toEqual([grey.id]);
    for (const url of [
      `${API}/cases?needsreview=true`,
      `${API}/cases?labels=x`,
      `${API}/cases.csv?order=label`,
    ]) {
      const res = await app.inject(url);
      expect([url, res.statusCode, errorOf(res).error]).toEqual([url, 400, 'invalid_request']);
      expect(errorOf(res).message).toMatch(/^Unknown query parameter '(needsreview|labels|order)'\.$/);
    }
  });

  it('keeps the review beside the prediction, with its history', async () => {
    await start();
    const [n1] = await seed();
    const url = `${API}/cases/${n1.id}`;
    const first = await app.inject({
      method: 'PATCH',
      url,
      payload: { reviewLabel: 'lymphocyte', reviewer: '  Dr Ana  ', note: 'small, round nucleus' },
    });
    expect(first.statusCode).toBe(200);
    const reviewed = first.json() as CaseBody;
    // The model's output is untouched.
    expect(reviewed).toMatchObject({
      label: 'neutrophil',
      confidence: n1.confidence,
      probabilities: n1.probabilities,
      review: { label: 'lymphocyte', reviewer: 'Dr Ana', note: 'small, round nucleus' },
    });
    expect(Date.parse(reviewed.review?.reviewedAt ?? '')).toBeGreaterThan(0);

    const second = await app.inject({
      method: 'PATCH',
      url,
      payload: { reviewLabel: EXTRA_REVIEW_LABELS[1], reviewer: 'Dr Bo' },
    });
    expect(second.statusCode).toBe(200);
    expect((second.json() as CaseBody).review).toMatchObject({
      label: 'not_a_white_cell',
      reviewer: 'Dr Bo',
      note: '',
    });
    const full = (await app.inject(url)).json() as CaseBody;
    expect(full.label).toBe('neutrophil');
    expect(full.reviews?.map((r) => [r.label, r.reviewer])).toEqual([
      ['lymphocyte', 'Dr Ana'],
      ['not_a_white_cell', 'Dr Bo'],
    ]);
    expect(full.review?.label).toBe('not_a_white_cell');

    const bad = await app.inject({
      method: 'PATCH',
      url,
      payload: { reviewLabel: 'basophil', reviewer: 'x' },
    });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).message).toContain('neutrophil');
    expect(errorOf(bad).message).toContain('other');
    for (const payload of [{ reviewLabel: 'monocyte' }, { reviewLabel: 'monocyte', reviewer: '   ' }, {}]) {
      const res = await app.inject({ method: 'PATCH', url, payload });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).error).toBe('invalid_request');
    }
    const unknown = await app.inject({
      method: 'PATCH',
      url: `${API}/cases/00000000-0000-4000-8000-000000000000`,
      payload: { reviewLabel: 'monocyte', reviewer: 'x' },
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('answers 404 for an unknown id and 400 for a malformed one on every case route', async () => {
    await start();
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [method, suffix] of [
      ['GET', ''],
      ['GET', '/image'],
      ['GET', '/heatmap.png'],
      ['DELETE', ''],
    ] as const) {
      const payload = method === 'DELETE' ? { reason: 'test' } : undefined;
      const res = await app.inject({ method, url: `${API}/cases/${unknown}${suffix}`, payload });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: `No case with id ${unknown}.` });
      const bad = await app.inject({ method, url: `${API}/cases/not-a-uuid${suffix}`, payload });
      expect(bad.statusCode).toBe(400);
      expect(errorOf(bad).error).toBe('invalid_id');
    }
  });

  it('deletes a case softly, with a reason: hidden, its bytes and reviews kept, restorable, audited', async () => {
    await start();
    const bytes = await solidJpeg(16, 16, [30, 220, 30]);
    const a = ((await predict([{ name: 'a.jpg', bytes }])).json() as { cases: CaseBody[] }).cases[0];
    const store = app.caseStore as SqliteCaseStore; // its blob paths
    const sha = (await store.get(a.id))?.imageSha256 as string;
    const url = `${API}/cases/${a.id}`;

    expect(errorOf(await app.inject({ method: 'DELETE', url })).error).toBe('invalid_request');
    const del = await app.inject({ method: 'DELETE', url, payload: { reason: 'wrong patient' } });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect((await app.inject(url)).statusCode).toBe(404);
    expect((await app.inject(`${url}/image`)).statusCode).toBe(404);
    expect((await app.inject(`${API}/cases`)).json()).toMatchObject({ total: 0 });
    expect(existsSync(store.imagePath(sha))).toBe(true);
    expect((await app.inject({ method: 'DELETE', url, payload: { reason: 'again' } })).statusCode).toBe(404);

    const restored = await app.inject({ method: 'POST', url: `${url}/restore` });
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toMatchObject({ id: a.id });
    expect((await app.inject(`${url}/image`)).rawPayload.equals(bytes)).toBe(true);
    expect(errorOf(await app.inject({ method: 'POST', url: `${url}/restore` })).error).toBe('not_deleted');

    const audit = (await app.inject(`${API}/audit?targetId=${a.id}`)).json() as {
      entries: { actor: string; action: string; detail: string }[];
    };
    expect(audit.entries.map((e) => [e.actor, e.action, e.detail])).toEqual([
      ['local', 'restore', ''],
      ['local', 'delete', 'wrong patient'],
      ['local', 'create', ''],
    ]);
  });

  it('exports CSV with proper quoting and one column per class', async () => {
    await start();
    const bytes = await solidJpeg(16, 16, [220, 30, 30]);
    const c = ((await predict([{ name: 'smear, "left".jpg', bytes }])).json() as { cases: CaseBody[] })
      .cases[0];
    const d = (
      (await predict([{ name: '=cmd.jpg', bytes: await solidJpeg(16, 16, [30, 30, 220]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${c.id}`,
      payload: { reviewLabel: 'monocyte', reviewer: 'Ana, MD', note: 'says "maybe"\nsecond line' },
    });
    const res = await app.inject(`${API}/cases.csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toContain('attachment');
    const rows = parseCsv(res.body);
    expect(rows[0]).toEqual([
      'id',
      'file',
      'createdAt',
      'cell',
      'x',
      'y',
      'width',
      'height',
      'label',
      'confidence',
      'needsReview',
      'reviewReasons',
      'p_eosinophil',
      'p_lymphocyte',
      'p_monocyte',
      'p_neutrophil',
      'imageLabel',
      'imageNeedsReview',
      'reviewLabel',
      'reviewer',
      'reviewedAt',
      'note',
      'modelName',
      'modelVersion',
      'modelSha256',
      'tta',
      'specimen',
    ]);
    expect(rows).toHaveLength(3);
    const byId = Object.fromEntries(
      rows.slice(1).map((r) => [r[0], Object.fromEntries(rows[0].map((h, i) => [h, r[i]]))]),
    );
    expect(byId[c.id]).toMatchObject({
      file: c.file,
      label: 'neutrophil',
      confidence: '0.9',
      needsReview: 'false',
      p_neutrophil: '0.9',
      reviewLabel: 'monocyte',
      reviewer: 'Ana, MD',
      note: 'says "maybe"\nsecond line',
      modelName: 'fake-wbc',
      modelSha256: FAKE_CARD.modelSha256,
      tta: 'false',
    });
    expect(c.file).toContain(','); // the name really needed quoting
    expect(byId[d.id]).toMatchObject({ file: "'=cmd.jpg", label: 'monocyte', reviewLabel: '', reviewer: '' });
    const filtered = parseCsv((await app.inject(`${API}/cases.csv?reviewed=true`)).body);
    expect(filtered.slice(1).map((r) => r[0])).toEqual([c.id]);

    // A field with two cells is two rows: each cell's own box, label, flag and probabilities.
    const field = (
      (await predict([{ name: 'field.png', bytes: await solidPng(120, 80, [128, 128, 128]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const all = parseCsv((await app.inject(`${API}/cases.csv`)).body);
    const cells = all
      .slice(1)
      .filter((r) => r[0] === field.id)
      .map((r) => Object.fromEntries(all[0].map((h, i) => [h, r[i]])));
    expect(
      cells.map((r) => [r.cell, r.x, r.label, r.needsReview, r.reviewReasons, r.imageNeedsReview]),
    ).toEqual([
      ['1', '0', 'eosinophil', 'true', 'low_confidence', 'true'],
      ['2', '50', 'lymphocyte', 'false', '', 'true'],
    ]);
    expect(Number(cells[1].p_lymphocyte)).toBeCloseTo(0.8, 6);
  });

  it('keeps cases and reviews across a restart', async () => {
    await start();
    const bytes = await solidJpeg(16, 16, [220, 30, 30]);
    const c = ((await predict([{ name: 'keep.jpg', bytes }])).json() as { cases: CaseBody[] }).cases[0];
    await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${c.id}`,
      payload: { reviewLabel: 'eosinophil', reviewer: 'ana' },
    });
    await app.close();

    const store = await openStore({ dataDir });
    try {
      const again = await store.get(c.id);
      expect(again).toMatchObject({
        file: 'keep.jpg',
        label: 'neutrophil',
        review: { label: 'eosinophil', reviewer: 'ana' },
      });
      expect((await store.migrations()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      await store.close();
    }

    await start();
    const res = await app.inject(`${API}/cases/${c.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: c.id, label: 'neutrophil', review: { label: 'eosinophil' } });
    expect((await app.inject(`${API}/cases/${c.id}/image`)).rawPayload.equals(bytes)).toBe(true);
  });
});
