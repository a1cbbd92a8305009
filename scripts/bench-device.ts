/// <reference lib="dom" />
/**
 * "Analyse on this device" speed in headless Chromium: file → result in the page (decode, locate, crop,
 * resize, int8 network in onnxruntime-web, predictions), one image at a time, on Kaggle TRAIN and PBC
 * images from ../shared. Builds the UI, serves it with the real app. Prints p50/p90 and the stage split.
 * The same images through the server's pipeline (onnxruntime-node, the same int8 file) in the same run, side
 * by side. Usage: npx tsx scripts/bench-device.ts [images=40] [wasm threads]
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { prepareImage } from '../src/model/inputs.js';
import { pipeline } from '../src/pipeline.js';
import { buildApp } from '../src/server/app.js';

const root = path.resolve(import.meta.dirname, '..');
const data = path.resolve(root, '../shared/data');
const n = Number(process.argv[2] ?? 40);
/** onnxruntime-web threads (default: the page's own choice). */
const threads = process.argv[3];
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
const app = await buildApp({
  auth: 'off',
  vision,
  dataDir: path.join(tmp, 'data'),
  webDir,
  deviceModel: int8,
});
const base = await app.listen({ port: 0, host: '127.0.0.1' });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage();
  await page.goto(threads ? `${base}?ortThreads=${threads}` : base);
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
  type Api = {
    analyse(b: Blob): Promise<unknown>;
    decode(b: Blob): Promise<unknown>;
    classify(c: { width: number; height: number; rgb: string }[]): Promise<unknown>;
  };
  const stage = {
    total: [] as number[],
    decode: [] as number[],
    network: [] as number[],
    server: [] as number[],
  };
  let first = 0;
  for (const [i, file] of files.entries()) {
    const bytes = readFileSync(file);
    const crops = (await prepareImage(file, vision.card.preprocessing)).regions.map((r) => ({
      width: r.pixels.width,
      height: r.pixels.height,
      rgb: Buffer.from(r.pixels.data).toString('base64'),
    }));
    const ms = await page.evaluate(
      async ([b64, crops]) => {
        const api = (window as unknown as { hematovisionDevice: Api }).hematovisionDevice;
        const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/jpeg' });
        const t0 = performance.now();
        await api.analyse(blob);
        const t1 = performance.now();
        await api.decode(blob);
        const t2 = performance.now();
        await api.classify(crops);
        return { total: t1 - t0, decode: t2 - t1, network: performance.now() - t2 };
      },
      [bytes.toString('base64'), crops] as const,
    );
    const t0 = performance.now();
    await vision.analyze(bytes);
    const server = performance.now() - t0;
    if (i === 0) first = ms.total;
    else {
      stage.total.push(ms.total);
      stage.decode.push(ms.decode);
      stage.network.push(ms.network);
      stage.server.push(server);
    }
  }
  const q = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(1);
  console.log(
    `device analysis, ${stage.total.length} images (Kaggle TRAIN + PBC), cross-origin isolated ${info.isolated}, ` +
      `${info.cores} cores: p50 ${q(stage.total, 0.5)} ms, p90 ${q(stage.total, 0.9)} ms; first image ` +
      `${first.toFixed(0)} ms (model download and start)`,
  );
  console.log(
    `  in the page, p50: decode ${q(stage.decode, 0.5)} ms, network on the cells' crops ${q(stage.network, 0.5)} ms ` +
      '(each timed alone, so they need not add up to the whole under load)',
  );
  console.log(
    `server pipeline (onnxruntime-node, same file, same images, same run): p50 ${q(stage.server, 0.5)} ms, ` +
      `p90 ${q(stage.server, 0.9)} ms`,
  );
} finally {
  await browser.close();
  await app.close();
  await vision.close();
  rmSync(tmp, { recursive: true, force: true });
}
