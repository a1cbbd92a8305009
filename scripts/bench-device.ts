/// <reference lib="dom" />
/**
 * "Analyse on this device" speed in headless Chromium: file → result in the page (decode, locate, crop,
 * resize, int8 network in onnxruntime-web, predictions), one image at a time, on Kaggle TRAIN and PBC
 * images from ../shared. Builds the UI, serves it with the real app. Prints p50/p90 and the stage split.
 * Usage: npx tsx scripts/bench-device.ts [images=40]
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { pipeline } from '../src/pipeline.js';
import { buildApp } from '../src/server/app.js';

const root = path.resolve(import.meta.dirname, '..');
const data = path.resolve(root, '../shared/data');
const n = Number(process.argv[2] ?? 40);
if (!existsSync(data)) {
  console.error(`bench-device: ${data} (../shared) is missing.`);
  process.exit(1);
}

function pick(dir: string, count: number): string[] {
  const classes = readdirSync(dir).sort();
  const out: string[] = [];
  for (let i = 0; out.length < count; i++)
    for (const c of classes) {
      const files = readdirSync(path.join(dir, c)).sort();
      // From the end of each folder: other images than the parity test's.
      if (i < files.length && out.length < count) out.push(path.join(dir, c, files[files.length - 1 - i]));
    }
  return out;
}

const tmp = mkdtempSync(path.join(tmpdir(), 'hv-bench-device-'));
const webDir = path.join(tmp, 'web');
await build({ configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn', build: { outDir: webDir } });
const int8 = path.join(root, 'models/model.int8.onnx');
const vision = await pipeline({ model: int8 });
const app = await buildApp({ vision, dataDir: path.join(tmp, 'data'), webDir, deviceModel: int8 });
const base = await app.listen({ port: 0, host: '127.0.0.1' });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage();
  await page.goto(base);
  await page.waitForFunction(
    () =>
      (window as unknown as { hematovisionDevice?: { analyse(b: Blob): Promise<unknown> } })
        .hematovisionDevice !== undefined,
  );
  const info = await page.evaluate(() => ({
    isolated: crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
  }));
  const files = [
    ...pick(path.join(data, 'kaggle-blood-cells/TRAIN'), n / 2),
    ...pick(path.join(data, 'pbc'), n / 2),
  ];
  const times: number[] = [];
  let first = 0;
  for (const [i, file] of files.entries()) {
    const ms = await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const t0 = performance.now();
      await (
        window as unknown as { hematovisionDevice?: { analyse(b: Blob): Promise<unknown> } }
      ).hematovisionDevice!.analyse(new Blob([bytes], { type: 'image/jpeg' }));
      return performance.now() - t0;
    }, readFileSync(file).toString('base64'));
    if (i === 0) first = ms;
    else times.push(ms);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(1);
  console.log(
    `device analysis, ${times.length} images (Kaggle TRAIN + PBC), cross-origin isolated ${info.isolated}, ` +
      `${info.cores} cores: p50 ${q(0.5)} ms, p90 ${q(0.9)} ms; first image ${first.toFixed(0)} ms (model download and start)`,
  );
} finally {
  await browser.close();
  await app.close();
  await vision.close();
  rmSync(tmp, { recursive: true, force: true });
}
