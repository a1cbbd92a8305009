/** Heat maps served through the case routes: drawn once on first request, stored, read back. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  API,
  app,
  type CaseBody,
  dataDir,
  errorOf,
  freshAppPerTest,
  predict,
  start,
} from '../testing/app.js';
import { createVersion1DataDir, fakeVision, solidJpeg, solidPng } from '../testing/server.js';
import { MIGRATIONS } from './store/migrations.js';

freshAppPerTest();

describe('heat maps', () => {
  function heatmapFiles(): string[] {
    return readdirSync(join(dataDir, 'heatmaps'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name);
  }

  it('are drawn on first request from the stored maps, stored, then read from the file', async () => {
    const vision = fakeVision();
    await start({ vision });
    const field = await solidPng(120, 80, [30, 200, 30]); // two cells
    const c = (
      (await predict([{ name: 'f.png', bytes: field, type: 'image/png' }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    expect(c.heatmapUrl).toBe(`${API}/cases/${c.id}/heatmap.png`);
    // Predict stored the maps only: nothing rendered, no file.
    expect(vision.rendered).toBe(0);
    expect(heatmapFiles()).toEqual([]);
    expect(await app.caseStore.get(c.id)).toMatchObject({ heatmapSha256: null, hasHeatmapData: true });

    const first = await app.inject(c.heatmapUrl as string);
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('image/png');
    expect(first.rawPayload.subarray(1, 4).toString()).toBe('PNG');
    expect(vision.rendered).toBe(1);
    // Drawn from the maps of that prediction, boxes included.
    expect(vision.renderedData[0].regions.map((r) => [r.label, r.box?.x, r.cam.length])).toEqual([
      ['lymphocyte', 0, 49],
      ['lymphocyte', 50, 49],
    ]);
    const sha = (await app.caseStore.get(c.id))?.heatmapSha256 as string;
    expect(heatmapFiles()).toEqual([sha]);

    const second = await app.inject(c.heatmapUrl as string);
    expect(second.rawPayload.equals(first.rawPayload)).toBe(true);
    expect(vision.rendered).toBe(1); // a file read
    expect((await app.inject(`${API}/cases/${c.id}`)).json()).toMatchObject({ heatmapUrl: c.heatmapUrl });

    // Still a file read after a restart.
    await app.close();
    const again = fakeVision();
    await start({ vision: again });
    expect((await app.inject(c.heatmapUrl as string)).rawPayload.equals(first.rawPayload)).toBe(true);
    expect(again.rendered).toBe(0);

    expect(await app.caseStore.delete(c.id)).toBe(true);
    expect(heatmapFiles()).toEqual([]);
  });

  it('serves concurrent first requests with one render and one stored file', async () => {
    const vision = fakeVision();
    await start({ vision });
    const c = (
      (await predict([{ name: 'r.jpg', bytes: await solidJpeg(40, 30, [220, 30, 30]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const replies = await Promise.all(Array.from({ length: 6 }, () => app.inject(c.heatmapUrl as string)));
    expect(replies.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
    for (const r of replies) expect(r.rawPayload.equals(replies[0].rawPayload)).toBe(true);
    expect(vision.rendered).toBe(1);
    expect(heatmapFiles()).toEqual([(await app.caseStore.get(c.id))?.heatmapSha256]);
    expect(readdirSync(join(dataDir, 'tmp'))).toEqual([]);
  });

  it('answers 500 when drawing fails, stores nothing, and draws again on the next request', async () => {
    const vision = fakeVision();
    const render = vision.renderHeatmap.bind(vision);
    let fail = true;
    vision.renderHeatmap = async (input, data) => {
      if (fail) throw new Error('sharp exploded at /secret/path');
      return render(input, data);
    };
    await start({ vision });
    const c = (
      (await predict([{ name: 'r.jpg', bytes: await solidJpeg(16, 16, [220, 30, 30]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const failed = await app.inject(c.heatmapUrl as string);
    expect(failed.statusCode).toBe(500);
    expect(errorOf(failed).error).toBe('internal_error');
    expect(failed.body).not.toContain('secret');
    expect(heatmapFiles()).toEqual([]);
    fail = false;
    expect((await app.inject(c.heatmapUrl as string)).statusCode).toBe(200);
    expect(vision.rendered).toBe(1);
  });

  it('keeps serving the heat maps that a schema-1 data folder stored at predict time', async () => {
    const id = '22222222-2222-4222-8222-222222222222';
    const image = await solidJpeg(16, 16, [220, 30, 30]);
    const heatmapPng = await solidPng(4, 4, [1, 2, 3]);
    createVersion1DataDir(dataDir, { id, image, heatmapPng });
    const vision = fakeVision();
    await start({ vision });
    const listed = (await app.inject(`${API}/cases`)).json() as { cases: CaseBody[] };
    expect(listed.cases).toEqual([
      expect.objectContaining({ id, label: 'neutrophil', heatmapUrl: `${API}/cases/${id}/heatmap.png` }),
    ]);
    const heat = await app.inject(`${API}/cases/${id}/heatmap.png`);
    expect(heat.statusCode).toBe(200);
    expect(heat.rawPayload.equals(heatmapPng)).toBe(true);
    expect(vision.rendered).toBe(0);
    expect((await app.inject(`${API}/cases/${id}/image`)).rawPayload.equals(image)).toBe(true);
    expect((await app.caseStore.migrations()).map((m) => m.version)).toEqual(
      MIGRATIONS.map((m) => m.version),
    );
    // New cases in the migrated folder take the lazy path.
    const fresh = await predict([{ name: 'n.jpg', bytes: await solidJpeg(16, 16, [30, 30, 220]) }]);
    const freshCase = (fresh.json() as { cases: CaseBody[] }).cases[0];
    expect((await app.inject(freshCase.heatmapUrl as string)).statusCode).toBe(200);
    expect(vision.rendered).toBe(1);
  });
});
