/** The server with the real model from pipeline(): skipped until models/model.onnx exists. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipeline, type HematoVision } from '../pipeline.js';
import { buildApp } from './app.js';
import type { SqliteCaseStore } from './store/index.js';
import { multipart, solidJpeg, type UploadFile } from '../testing/server.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const modelPath = join(repoRoot, 'models', 'model.onnx');
const hasModel = existsSync(modelPath);
const kaggleTest = join(resolve(repoRoot, '../shared'), 'data', 'kaggle-blood-cells', 'TEST');

const SKIP_REASON = `SKIPPED: ${modelPath} not found; train or fetch the model first (npm run train:default)`;
if (!hasModel) console.warn(`[server + real model] ${SKIP_REASON}`);

/** One real smear image per class when ../shared is present, else a synthetic pinkish field. */
async function sampleImages(): Promise<UploadFile[]> {
  if (existsSync(kaggleTest)) {
    return readdirSync(kaggleTest)
      .sort()
      .slice(0, 2)
      .map((cls) => {
        const dir = join(kaggleTest, cls);
        const name = readdirSync(dir).sort()[0];
        return { name: `${cls}-${name}`, bytes: readFileSync(join(dir, name)) };
      });
  }
  console.warn(`[server + real model] ${kaggleTest} absent: using synthetic images`);
  return [
    { name: 'pink.jpg', bytes: await solidJpeg(320, 240, [230, 180, 200]) },
    { name: 'purple.jpg', bytes: await solidJpeg(320, 240, [120, 60, 160]) },
  ];
}

describe.skipIf(!hasModel)(
  hasModel ? 'server with the real model' : `server with the real model — ${SKIP_REASON}`,
  () => {
    let vision: HematoVision;
    let app: FastifyInstance;
    let dataDir: string;

    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'hv-server-model-'));
      vision = await pipeline();
      app = await buildApp({ auth: 'off', vision, dataDir, webDir: join(dataDir, 'no-web') });
    });

    afterAll(async () => {
      await app?.close();
      await vision?.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('reports the loaded model', async () => {
      const health = (await app.inject('/api/v1/health')).json() as {
        model: { name: string; classes: string[] };
      };
      expect(health.model.name).toBe(vision.card.name);
      expect(health.model.classes).toEqual(vision.card.classes);
      expect(health.model.classes.length).toBeGreaterThanOrEqual(2);
    });

    it('analyses real images end to end: cases, heat maps, differential', async () => {
      const files = await sampleImages();
      const res = await app.inject({ method: 'POST', url: '/api/v1/predict', ...(await multipart(files)) });
      expect(res.statusCode).toBe(200);
      const body = res.json() as {
        cases: {
          id: string;
          label: string | null;
          probabilities: Record<string, number>;
          heatmapUrl: string | null;
          imageUrl: string;
          cells: { label: string }[];
        }[];
        differential: { counts: Record<string, number>; percentages: Record<string, number>; total: number };
      };
      expect(body.cases).toHaveLength(files.length);
      const classes = vision.card.classes;
      let expectedTotal = 0;
      for (const [i, c] of body.cases.entries()) {
        if (c.label !== null) {
          expect(classes).toContain(c.label);
          expect(Object.keys(c.probabilities).sort()).toEqual([...classes].sort());
          expect(Object.values(c.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
        }
        expectedTotal += c.cells.length > 0 ? c.cells.length : c.label !== null ? 1 : 0;
        const img = await app.inject(c.imageUrl);
        expect(img.rawPayload.equals(files[i].bytes)).toBe(true);
        if (c.heatmapUrl) {
          // Drawn by the real renderHeatmap from the stored maps on first request, then read from its file.
          expect(await app.caseStore.get(c.id)).toMatchObject({ heatmapSha256: null, hasHeatmapData: true });
          const heat = await app.inject(c.heatmapUrl);
          expect(heat.headers['content-type']).toBe('image/png');
          expect(heat.rawPayload.subarray(1, 4).toString()).toBe('PNG');
          const sha = (await app.caseStore.get(c.id))?.heatmapSha256 as string;
          expect(
            readFileSync((app.caseStore as SqliteCaseStore).heatmapPath(sha)).equals(heat.rawPayload),
          ).toBe(true);
          expect((await app.inject(c.heatmapUrl)).rawPayload.equals(heat.rawPayload)).toBe(true);
        }
      }
      expect(body.differential.total).toBe(expectedTotal);
      expect(Object.keys(body.differential.counts)).toEqual(expect.arrayContaining(classes));
    });

    it('turns bad images into 4xx through the real pipeline', async () => {
      for (const bytes of [Buffer.from('not an image'), Buffer.alloc(0)]) {
        const res = await app.inject({
          method: 'POST',
          url: '/api/v1/predict',
          ...(await multipart([{ name: 'bad.jpg', bytes }])),
        });
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
      }
    });
  },
);
