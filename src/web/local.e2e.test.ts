/**
 * "Analyse on this device" in real Chromium: the browser's answers against the server's on the same images
 * with the same (int8) model file, and the device mode with the network off. Screenshots go to
 * test-results/screenshots/.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipeline, type HematoVision, type ImageAnalysis } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import type { LocalAnalysis } from './local/analyse-local.js';

const CHROMIUM = '/usr/bin/chromium';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dataDir = path.resolve(repoRoot, '../shared/data');
const shotDir = path.join(repoRoot, 'test-results/screenshots');
const INT8 = path.join(repoRoot, 'models/model.int8.onnx');
const KAGGLE = path.join(dataDir, 'kaggle-blood-cells/TRAIN');
const PBC = path.join(dataDir, 'pbc');

const haveChromium = existsSync(CHROMIUM);
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

function maxProbDiff(a: Record<string, number>, b: Record<string, number>): number {
  let m = 0;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    m = Math.max(m, Math.abs((a[k] ?? NaN) - (b[k] ?? NaN)));
  return m;
}

describe.skipIf(!haveChromium || !haveModel)('analyse on this device (Chromium)', () => {
  let tmp: string;
  let vision: HematoVision;
  let app: FastifyInstance;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  const errors: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-local-e2e-'));
    const webDir = path.join(tmp, 'web');
    const { build } = await import('vite');
    await build({
      configFile: path.join(repoRoot, 'vite.config.ts'),
      logLevel: 'warn',
      build: { outDir: webDir, emptyOutDir: true },
    });
    // The server answers with the same model file the page downloads.
    vision = await pipeline({ model: INT8 });
    app = await buildApp({ vision, dataDir: path.join(tmp, 'data'), webDir, deviceModel: INT8 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(120_000);
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    mkdirSync(shotDir, { recursive: true });
    await page.goto(base);
    await page.waitForFunction(() => window.hematovisionDevice !== undefined);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await vision?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.skipIf(!haveData)(
    'gives the server\u2019s answers on 50 images of both labs (probabilities within 1e-3, boxes within 1 px)',
    async () => {
      const files = [...pick(KAGGLE, 25), ...pick(PBC, 25)];
      let worstP = 0;
      let worstBox = 0;
      const mismatches: string[] = [];
      for (const file of files) {
        const server: ImageAnalysis = await vision.analyze(file);
        const local = await analyseInPage(page, file);
        const name = path.relative(dataDir, file);
        expect([local.width, local.height], name).toEqual([server.width, server.height]);
        if (local.label !== server.label) mismatches.push(`${name}: ${local.label} vs ${server.label}`);
        expect(local.reviewReasons, name).toEqual(server.reviewReasons);
        expect(local.cells.length, name).toBe(server.cells.length);
        worstP = Math.max(worstP, maxProbDiff(local.probabilities, server.probabilities));
        server.cells.forEach((s, i) => {
          const l = local.cells[i];
          expect(l.label, name).toBe(s.label);
          expect(l.reviewReasons, name).toEqual(s.reviewReasons);
          worstP = Math.max(worstP, maxProbDiff(l.probabilities, s.probabilities));
          for (const k of ['x', 'y', 'width', 'height'] as const)
            worstBox = Math.max(worstBox, Math.abs(l.box[k] - s.box[k]));
        });
      }
      console.log(
        `[local e2e] parity on ${files.length} images: max |Δp| ${worstP.toExponential(2)}, max box Δ ${worstBox} px`,
      );
      expect(mismatches).toEqual([]);
      expect(worstP).toBeLessThanOrEqual(1e-3);
      expect(worstBox).toBeLessThanOrEqual(1);
    },
    600_000,
  );
});
