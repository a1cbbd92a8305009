/**
 * "Analyse on this device" in real Chromium: the browser's answers against the server's on the same images
 * with the same (int8) model file, and the device mode with the network off. Screenshots go to
 * test-results/screenshots/.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cropSquare } from '../imaging/crop.js';
import { resizeLinear } from '../imaging/resize.js';
import type { RgbImage } from '../imaging/types.js';
import { prepareImage } from '../model/inputs.js';
import { pipeline, type HematoVision, type ImageAnalysis, type Prediction } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import { builtWeb, CHROMIUM, haveChromium, openBrowser, SHOT_DIR } from '../testing/browser.js';
import { REPO_ROOT, SHARED } from '../testing/shared.js';
import type { LocalAnalysis } from './local/analyse-local.js';
import type { WirePixels } from './local/device.js';

const dataDir = path.join(SHARED, 'data');
const INT8 = path.join(REPO_ROOT, 'models/model.int8.onnx');
const KAGGLE = path.join(dataDir, 'kaggle-blood-cells/TRAIN');
const PBC = path.join(dataDir, 'pbc');

const haveModel = existsSync(INT8);
const haveData = existsSync(KAGGLE) && existsSync(PBC);
if (!haveChromium) console.warn(`[local e2e] skipped: no Chromium at ${CHROMIUM}.`);
else if (!haveModel)
  console.warn(`[local e2e] skipped: no int8 model at ${INT8} (hematovision export --int8).`);
if (!haveData) console.warn(`[local e2e] parity skipped: ${dataDir} (../shared) is missing.`);

/** n files of a lab, spread evenly over its class folders, first names in sorted order (deterministic). */
function pick(root: string, n: number): string[] {
  const classes = readdirSync(root).sort();
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    for (const c of classes) {
      const files = readdirSync(path.join(root, c)).sort();
      if (i < files.length && out.length < n) out.push(path.join(root, c, files[i]));
    }
  }
  return out;
}

/** Runs the device pipeline in the page on the file's bytes. */
async function analyseInPage(page: Page, file: string): Promise<LocalAnalysis & { ms: number }> {
  const b64 = readFileSync(file).toString('base64');
  return page.evaluate(async (data) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const t0 = performance.now();
    const a = await window.hematovisionDevice!.analyse(new Blob([bytes], { type: 'image/jpeg' }));
    return { ...a, ms: performance.now() - t0 };
  }, b64);
}

/** A bundled teaching image: a real cell photo when ../shared is absent. */
function firstTeachingImage(): string {
  const dir = path.join(REPO_ROOT, 'teaching/images');
  return path.join(dir, readdirSync(dir).sort()[0]);
}

function maxProbDiff(a: Record<string, number>, b: Record<string, number>): number {
  let m = 0;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    m = Math.max(m, Math.abs((a[k] ?? NaN) - (b[k] ?? NaN)));
  return m;
}

const wire = (p: RgbImage): WirePixels => ({
  width: p.width,
  height: p.height,
  rgb: Buffer.from(p.data).toString('base64'),
});

/** How far two images' values are apart: count of differing values and the largest difference. */
function pixelDiff(a: Uint8Array, b: Uint8Array): { off: number; max: number } {
  let off = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d) off++;
    if (d > max) max = d;
  }
  return { off, max };
}

/** Per image, each stage of the device path against the server's (filled by the first test). */
interface Stages {
  /** Decoded values (browser vs sharp) that differ, of `decoded`. */
  decodeOff: number;
  decoded: number;
  /** The crops resizeLinear makes of the decoded image against the server's (prepareImage), same cells. */
  resizeOff: number;
  resizeMax: number;
  resized: number;
  /** The server's own crops run through the browser's runtime. */
  sameCrops: Prediction[];
}

/** The file's stages in the page and on the server. */
async function stagesOf(page: Page, vision: HematoVision, file: string): Promise<Stages> {
  const prep = await prepareImage(file, vision.card.preprocessing, { keepImage: true });
  const image = prep.image!;
  const b64 = readFileSync(file).toString('base64');
  const decoded = await page.evaluate(
    (d) => window.hematovisionDevice!.decode(new Blob([Uint8Array.from(atob(d), (c) => c.charCodeAt(0))])),
    b64,
  );
  const dec = pixelDiff(Buffer.from(decoded.rgb, 'base64'), image.data);
  let resizeOff = 0;
  let resizeMax = 0;
  let resized = 0;
  const size = vision.card.preprocessing.inputSize;
  for (const r of prep.regions) {
    const ours = resizeLinear(cropSquare(image, r.box!, vision.card.preprocessing.cropPadding), size, size);
    const d = pixelDiff(ours.data, r.pixels.data);
    resizeOff += d.off;
    resizeMax = Math.max(resizeMax, d.max);
    resized += ours.data.length;
  }
  const crops = prep.regions.map((r) => wire(r.pixels));
  const sameCrops = await page.evaluate((c) => window.hematovisionDevice!.classify(c), crops);
  return { decodeOff: dec.off, decoded: image.data.length, resizeOff, resizeMax, resized, sameCrops };
}

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

describe.skipIf(!haveChromium || !haveModel)('analyse on this device (Chromium)', () => {
  let tmp: string;
  let vision: HematoVision;
  let app: FastifyInstance;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  let errors: string[];
  let serverStopped = false;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-local-e2e-'));
    const webDir = await builtWeb();
    // The server answers with the same model file the page downloads.
    vision = await pipeline({ model: INT8 });
    app = await buildApp({ auth: 'off', vision, dataDir: path.join(tmp, 'data'), webDir, deviceModel: INT8 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    ({ browser, context, page, errors } = await openBrowser({ timeout: 120_000 }));
    await page.goto(base);
    await page.waitForFunction(() => window.hematovisionDevice !== undefined);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    if (!serverStopped) await app?.close();
    await vision?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** Every image of the parity set, analysed in the page and by the server (filled by the first test). */
  const pairs: {
    name: string;
    server: ImageAnalysis;
    local: LocalAnalysis & { ms: number };
    stages: Stages;
  }[] = [];

  it.skipIf(!haveData)(
    'gives the server\u2019s labels, review flags and boxes (within 1 px) on 50 images of both labs',
    async () => {
      const files = [...pick(KAGGLE, 25), ...pick(PBC, 25)];
      for (const file of files) {
        const server: ImageAnalysis = await vision.analyze(file);
        const local = await analyseInPage(page, file);
        const stages = await stagesOf(page, vision, file);
        pairs.push({ name: path.relative(dataDir, file), server, local, stages });
      }
      // wasm and native int8 kernels differ a little (the runtimes test below), so a cell lying on a review line
      // may fall on either side: a reason may differ only where the server's value is within 10 % of its line
      // (a distance of 0.9–1.1 in threshold units, a confidence within 0.03 of the review threshold), and on
      // at most two images; anything else is a real difference.
      const reviewThreshold = (
        JSON.parse(readFileSync(INT8.replace(/\.onnx$/, '.json'), 'utf8')) as {
          reviewThreshold: number;
        }
      ).reviewThreshold;
      const near = (p: Prediction, reason: string) =>
        reason === 'low_confidence'
          ? Math.abs(p.confidence - reviewThreshold) < 0.03
          : reason === 'unfamiliar_cell'
            ? Math.abs((p.distance?.cell ?? 0) - 1) < 0.1
            : reason === 'unfamiliar_image'
              ? Math.abs((p.distance?.image ?? 0) - 1) < 0.1
              : false;
      const differing = (a: string[], b: string[]) => [
        ...a.filter((r) => !b.includes(r)),
        ...b.filter((r) => !a.includes(r)),
      ];
      let worstBox = 0;
      const borderline = new Set<string>();
      for (const { name, server, local } of pairs) {
        expect([local.width, local.height], name).toEqual([server.width, server.height]);
        expect(local.label, name).toBe(server.label);
        expect(local.cells.length, name).toBe(server.cells.length);
        for (const r of differing(local.reviewReasons, server.reviewReasons)) {
          expect(
            server.cells.some((s) => near(s, r)),
            `${name}: ${r} differs away from its line`,
          ).toBe(true);
          borderline.add(name);
        }
        server.cells.forEach((s, i) => {
          const l = local.cells[i];
          expect(l.label, name).toBe(s.label);
          for (const r of differing(l.reviewReasons, s.reviewReasons))
            expect(near(s, r), `${name} cell ${i}: ${r} differs away from its line`).toBe(true);
          for (const k of ['x', 'y', 'width', 'height'] as const)
            worstBox = Math.max(worstBox, Math.abs(l.box[k] - s.box[k]));
        });
      }
      console.log(`[local e2e] review reasons differ on ${borderline.size} image(s), each on a line`);
      expect(borderline.size).toBeLessThanOrEqual(2);
      const ms = pairs.map((p) => p.local.ms).sort((a, b) => a - b);
      console.log(
        `[local e2e] ${pairs.length} images: max box Δ ${worstBox} px; in-page time per image p50 ` +
          `${ms[ms.length >> 1].toFixed(1)} ms (first ${pairs[0].local.ms.toFixed(0)} ms, model load included)`,
      );
      expect(worstBox).toBeLessThanOrEqual(1);
    },
    600_000,
  );

  // Stage by stage, what is ours: the browser decodes to sharp's very pixels (colour management off on both
  // sides, files without ICC profiles), and the crops go through the one resize both sides share
  // (resizeLinear, imaging/resize.ts), so they must be the server's exactly.
  it.skipIf(!haveData)(
    'decodes to the server\u2019s exact pixels and crops to the server\u2019s exact pixels',
    () => {
      expect(pairs.length).toBeGreaterThan(0);
      const sum = (f: (s: Stages) => number) => pairs.reduce((t, p) => t + f(p.stages), 0);
      const resizeShare = sum((s) => s.resizeOff) / sum((s) => s.resized);
      console.log(
        `[local e2e] decode: ${sum((s) => s.decodeOff)} of ${sum((s) => s.decoded)} values differ; ` +
          `crops: ${(resizeShare * 100).toFixed(3)} % of values differ, by at most ` +
          `${Math.max(...pairs.map((p) => p.stages.resizeMax))}`,
      );
      expect(sum((s) => s.decodeOff)).toBe(0);
      expect(Math.max(...pairs.map((p) => p.stages.resizeMax))).toBe(0);
      expect(resizeShare).toBe(0);
    },
  );

  // The runtimes alone: the server's own crops through onnxruntime-web give the same labels and review
  // reasons; the probabilities differ only by the int8 kernels (wasm against native, BENCHMARKS.md). The
  // bound separates a runtime's rounding from a broken device path.
  it.skipIf(!haveData)(
    'runs the network like the server: same answers on the server\u2019s own crops',
    () => {
      const gaps: number[] = [];
      for (const { name, server, stages } of pairs) {
        server.cells.forEach((s, i) => {
          const l = stages.sameCrops[i];
          expect(l.label, name).toBe(s.label);
          expect(l.reviewReasons, name).toEqual(s.reviewReasons);
          gaps.push(maxProbDiff(l.probabilities, s.probabilities));
        });
      }
      console.log(
        `[local e2e] same crops, ${gaps.length} cells: |Δp| p50 ${quantile(gaps, 0.5).toExponential(2)}, ` +
          `p90 ${quantile(gaps, 0.9).toExponential(2)}, max ${quantile(gaps, 1).toExponential(2)}`,
      );
      expect(quantile(gaps, 0.9)).toBeLessThanOrEqual(1e-3);
      expect(quantile(gaps, 1)).toBeLessThanOrEqual(5e-3);
    },
  );

  // End to end, the device differs from the server only where the runtimes do: its answer on its own crops is
  // its answer on the server's crops, to the last bit (the same decode, locator, crop and resize), so what is
  // left of issue 18's 1e-3 is the wasm and native int8 kernels' rounding (BENCHMARKS.md).
  it.skipIf(!haveData)('gives, end to end, its answer on the server\u2019s own crops exactly', () => {
    expect(pairs.length).toBeGreaterThan(0);
    const gaps: number[] = [];
    for (const { name, server, local, stages } of pairs) {
      server.cells.forEach((s, i) => {
        expect(local.cells[i].probabilities, name).toEqual(stages.sameCrops[i].probabilities);
        gaps.push(maxProbDiff(local.cells[i].probabilities, s.probabilities));
      });
    }
    console.log(
      `[local e2e] end to end, ${gaps.length} cells: |\u0394p| p50 ${quantile(gaps, 0.5).toExponential(2)}, ` +
        `p90 ${quantile(gaps, 0.9).toExponential(2)}, max ${quantile(gaps, 1).toExponential(2)}`,
    );
  });

  it('analyses on the device from the analyse page, showing the result card, nothing uploaded', async () => {
    const uploads: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/predict')) uploads.push(r.url());
    });
    await page.goto(base);
    const toggle = page.getByLabel('Analyse on this device');
    // The view renders once the session and model are known (after load): wait for it, do not race it.
    await toggle.waitFor();
    expect(await page.locator('.specimen-pick').isVisible()).toBe(true);
    await toggle.check();
    expect(await page.evaluate(() => localStorage.getItem('hematovision.analyseOnDevice'))).toBe('on');
    // Nothing is stored on the device path: no specimen to pick, and the hint says so.
    expect(await page.locator('.specimen-pick').isVisible()).toBe(false);
    expect(await page.locator('#drop-hint').textContent()).toContain('nothing is uploaded or stored');
    const file = haveData ? pick(KAGGLE, 1)[0] : null;
    const image = file
      ? { name: path.basename(file), mimeType: 'image/jpeg', buffer: readFileSync(file) }
      : { name: 'teaching.jpg', mimeType: 'image/jpeg', buffer: readFileSync(firstTeachingImage()) };
    await page.locator('#file-input').setInputFiles(image);
    const card = page.locator('article.result-card').first();
    await expect
      .poll(() => card.locator('.prediction__label').textContent(), { timeout: 60_000 })
      .toBeTruthy();
    expect(await card.textContent()).toContain('Analysed on this device');
    expect(await card.locator('table.probs tbody tr').count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(SHOT_DIR, 'local-analyse.png'), fullPage: true });
    expect(uploads).toEqual([]);
    const cases = async () =>
      (await app.inject({ url: '/api/v1/cases', headers: { host: new URL(base).host } })).json() as {
        total: number;
        cases: { id: string }[];
      };
    expect(await cases()).toMatchObject({ total: 0 });
    // Saved only when asked: then the image goes to the server, which stores its own analysis as a case.
    await card.getByRole('button', { name: 'Save to the server' }).click();
    await expect.poll(() => card.locator('.result-card__local').textContent()).toContain('Saved');
    expect(uploads).toHaveLength(1);
    const stored = await cases();
    expect(stored.total).toBe(1);
    expect(await card.getByRole('link', { name: 'Open case and review' }).getAttribute('href')).toContain(
      stored.cases[0].id,
    );
    await page.screenshot({ path: path.join(SHOT_DIR, 'local-saved.png'), fullPage: true });
    // Remembered on the next visit.
    await page.reload();
    expect(await page.getByLabel('Analyse on this device').isChecked()).toBe(true);
    expect(errors).toEqual([]);
  }, 120_000);

  // Last in the file: it stops the server.
  it('works with the network off and the server stopped after the first visit (service worker)', async () => {
    await page.goto(base);
    // The first visit installs the worker, which keeps the app, the runtime and the model. A worker whose
    // script throws never activates: say so instead of waiting for the test's timeout.
    const active = await page.evaluate(() =>
      Promise.race([
        navigator.serviceWorker.ready.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000)),
      ]),
    );
    expect(active, 'the service worker never activated (does sw.js run?)').toBe(true);
    await expect
      .poll(
        () =>
          page.evaluate(async () => {
            const keys = await caches.keys();
            const cache = await caches.open(keys.find((k) => k.startsWith('hematovision-'))!);
            return (await cache.keys()).map((r) => new URL(r.url).pathname);
          }),
        { timeout: 60_000 },
      )
      .toContain('/models/model.int8.onnx');
    // The switch as a returning user left it (also when this test runs alone).
    await page.evaluate(() => localStorage.setItem('hematovision.analyseOnDevice', 'on'));
    await app.close();
    serverStopped = true;
    await context.setOffline(true);
    try {
      // A fresh tab, as a user coming back later: everything must come from the worker's cache.
      const offline = await context.newPage();
      offline.setDefaultTimeout(60_000);
      // The API calls fail (no server, no network) and the console says so; anything else is a bug.
      const offlineErrors: string[] = [];
      offline.on('pageerror', (e) => offlineErrors.push(e.message));
      offline.on('console', (m) => {
        if (m.type() === 'error') offlineErrors.push(m.text());
      });
      await offline.goto(base, { timeout: 60_000 });
      await expect.poll(() => offline.getByLabel('Analyse on this device').isChecked()).toBe(true);
      const file = haveData ? pick(PBC, 1)[0] : firstTeachingImage();
      await offline
        .locator('#file-input')
        .setInputFiles({ name: path.basename(file), mimeType: 'image/jpeg', buffer: readFileSync(file) });
      const card = offline.locator('article.result-card').first();
      await expect.poll(() => card.textContent(), { timeout: 90_000 }).toContain('Analysed on this device');
      expect(await card.locator('table.probs tbody tr').count()).toBeGreaterThan(0);
      // The header names the model that answers (the device's copy), not "unavailable".
      const header = offline.locator('#model-info');
      await expect.poll(() => header.getAttribute('data-state')).toBe('device');
      expect(await header.textContent()).toMatch(/^Model: \S+ \S+ \(on this device\)$/);
      // One cell, one confidence: the label on its box says what the card says.
      const confidence = (await card.locator('.prediction__meta strong').textContent())!;
      expect(confidence).toMatch(/^\d+\.\d\u00a0%$/);
      const boxLabels = await card
        .locator('.cell-box__label')
        .evaluateAll((ls) => ls.map((l) => (l as HTMLElement).dataset.full ?? ''));
      expect(
        boxLabels.some((l) => l.endsWith(` ${confidence}`)),
        boxLabels.join(' | '),
      ).toBe(true);
      expect(
        offlineErrors.filter((e) => !/ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(e)),
      ).toEqual([]);
      // Saving needs the server: offline it says so, and the result stays on the page.
      await card.getByRole('button', { name: 'Save to the server' }).click();
      await expect
        .poll(() => card.locator('.result-card__save-status').textContent())
        .toContain('Not saved: The server cannot be reached');
      expect(await card.getByRole('button', { name: 'Save to the server' }).isEnabled()).toBe(true);
      await offline.screenshot({ path: path.join(SHOT_DIR, 'local-offline.png'), fullPage: true });
    } finally {
      await context.setOffline(false);
    }
  }, 180_000);
});
