/**
 * Benchmarks, written to BENCHMARKS.md with the machine and date. Ratios compare numbers measured side by
 * side in this one run; absolute numbers on a shared 2-core machine are noisy.
 *
 *   npm run bench                 everything, including two full trainings (~15 min)
 *   npm run bench -- --quick      inference, locating and HTTP only
 *   npm run bench -- --compare M  also score another model (e.g. a whole-image one) on Kaggle TEST
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../src/imaging/decode.js';
import { locateCells } from '../src/imaging/locate.js';
import { analyzeBatch, analyzeImage } from '../src/model/analyzer.js';
import { Classifier, DEFAULT_MODEL_PATH } from '../src/model/classifier.js';
import { withoutFamiliarity } from '../src/model/familiarity-graph.js';
import { FeatureExtractor, resolveBackbonePath } from '../src/model/feature-extractor.js';
import { prepareImage, writeInput } from '../src/model/inputs.js';
import { evaluateModel } from '../src/training/evaluate.js';
import { computeFeatures } from '../src/training/feature-cache.js';
import { SHARED, TFLITE } from '../src/testing/shared.js';
import { httpBench } from './bench-http.js';
import { ms, q } from './bench-stats.js';

const quick = process.argv.includes('--quick');
const lines: string[] = [];
const log = (s = '') => {
  console.log(s);
  lines.push(s);
};

function listImages(dir: string, limit: number): string[] {
  const out: string[] = [];
  for (const c of readdirSync(dir).sort()) {
    const sub = join(dir, c);
    for (const f of readdirSync(sub).sort()) if (/\.(jpe?g|png)$/i.test(f)) out.push(join(sub, f));
  }
  // Interleave classes deterministically.
  const step = Math.max(1, Math.floor(out.length / limit));
  return out.filter((_, i) => i % step === 0).slice(0, limit);
}

async function syntheticImages(n: number): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      sharp({
        create: { width: 320, height: 240, channels: 3, background: { r: 230, g: 180 + (i % 20), b: 190 } },
      })
        .composite([
          {
            input: Buffer.from(
              `<svg width="320" height="240"><circle cx="${150 + (i % 20)}" cy="120" r="35" fill="#5b2a86"/></svg>`,
            ),
          },
        ])
        .jpeg()
        .toBuffer(),
    ),
  );
}

async function main(): Promise<void> {
  const kaggleTest = join(SHARED, 'data/kaggle-blood-cells/TEST');
  const haveShared = existsSync(kaggleTest);
  const files: (string | Buffer)[] = haveShared ? listImages(kaggleTest, 200) : await syntheticImages(200);
  const buffers = await Promise.all(files.map(async (f) => (typeof f === 'string' ? readFileSync(f) : f)));

  log('# HematoVision benchmarks');
  log();
  log(`- date: ${new Date().toISOString()}`);
  log(
    `- machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  );
  log(
    `- images: ${haveShared ? '200 Kaggle TEST JPEGs (320×240)' : '200 synthetic 320×240 JPEGs (../shared absent)'}`,
  );
  log(`- command: \`npm run bench${quick ? ' -- --quick' : ''}\``);
  log();

  const classifier = await Classifier.load(DEFAULT_MODEL_PATH);
  const prep = classifier.card.preprocessing;
  log(`Model: ${classifier.card.name} ${classifier.card.version} (crop: ${prep.crop})`);
  log();

  // Warm up both paths.
  for (const b of buffers.slice(0, 10)) await analyzeImage(classifier, b);

  // The same model without its familiarity outputs, to show what the review scores cost.
  const plain = classifier.familiar ? await plainCopy() : null;

  // Single image, file to result, and in the same run its parts: decode alone and ORT on a ready tensor.
  const full: number[] = [];
  const decode: number[] = [];
  const ort: number[] = [];
  const ortPlain: number[] = [];
  const s = prep.inputSize;
  for (let i = 0; i < files.length; i++) {
    let t = performance.now();
    await analyzeImage(classifier, files[i]);
    full.push(performance.now() - t);
    t = performance.now();
    await decodeImage(files[i]);
    decode.push(performance.now() - t);
    const prepared = await prepareImage(buffers[i], prep);
    const n = Math.max(1, prepared.regions.length);
    const x = new Float32Array(n * 3 * s * s);
    prepared.regions.forEach((r, j) => writeInput(r.pixels, x, j));
    t = performance.now();
    await classifier.run(x, n);
    ort.push(performance.now() - t);
    if (plain) {
      t = performance.now();
      await plain.run(x, n);
      ortPlain.push(performance.now() - t);
    }
  }
  await plain?.close();
  // Test-time augmentation (8 views per cell), the same images in the same run.
  const withTta: number[] = [];
  if (classifier.hasTta)
    for (const f of files) {
      const t0 = performance.now();
      await analyzeImage(classifier, f, { tta: true });
      withTta.push(performance.now() - t0);
    }
  const base = q(decode, 0.5) + q(ort, 0.5);
  log('## Single-image predict (file → result), sequential');
  log();
  log('| measure | p50 | p95 |');
  log('| --- | --- | --- |');
  log(`| predict, file to result | ${ms(q(full, 0.5))} | ${ms(q(full, 0.95))} |`);
  log(`| decode only (sharp, full size) | ${ms(q(decode, 0.5))} | ${ms(q(decode, 0.95))} |`);
  log(`| ORT on a ready tensor | ${ms(q(ort, 0.5))} | ${ms(q(ort, 0.95))} |`);
  if (ortPlain.length)
    log(
      `| ORT, the same model without its familiarity outputs | ${ms(q(ortPlain, 0.5))} | ${ms(q(ortPlain, 0.95))} |`,
    );
  if (withTta.length)
    log(
      `| predict with test-time augmentation (8 views), file to result | ${ms(q(withTta, 0.5))} | ${ms(q(withTta, 0.95))} |`,
    );
  log();
  log(
    `Ratio predict p50 / (decode p50 + ORT p50) = **${(q(full, 0.5) / base).toFixed(2)}×** (target ≤ 1.5×; predict p50 target ≤ 20 ms).`,
  );
  if (ortPlain.length)
    log(
      `The familiarity outputs (review reasons unfamiliar_cell / unfamiliar_image) cost ORT p50 ` +
        `${(q(ort, 0.5) / q(ortPlain, 0.5)).toFixed(2)}× the model without them.`,
    );
  if (withTta.length)
    log(
      `With test-time augmentation (opt-in: \`--tta\`, \`TTA=1\`): predict p50 ${(q(withTta, 0.5) / q(full, 0.5)).toFixed(1)}× the default's.`,
    );
  log();

  // Batch throughput: analyzeBatch over chunks of 32 images.
  let t = performance.now();
  for (let i = 0; i < buffers.length; i += 32) await analyzeBatch(classifier, buffers.slice(i, i + 32));
  const batchRate = buffers.length / ((performance.now() - t) / 1000);
  t = performance.now();
  for (const b of buffers) await analyzeImage(classifier, b);
  const seqRate = buffers.length / ((performance.now() - t) / 1000);
  log('## Batch throughput');
  log();
  log(`- analyzeBatch, 32 images a call: **${batchRate.toFixed(0)} images/s** (target ≥ 120)`);
  log(
    `- one by one, same run: ${seqRate.toFixed(0)} images/s (batch/sequential = ${(batchRate / seqRate).toFixed(2)}×)`,
  );
  log();

  // Locating.
  const bccd = join(SHARED, 'data/bccd/JPEGImages');
  if (existsSync(bccd)) {
    const photos = readdirSync(bccd).sort().slice(0, 60);
    const imgs = await Promise.all(photos.map((p) => decodeImage(join(bccd, p))));
    for (const im of imgs.slice(0, 5)) locateCells(im);
    const times: number[] = [];
    for (let r = 0; r < 3; r++)
      for (const im of imgs) {
        const t0 = performance.now();
        locateCells(im);
        times.push(performance.now() - t0);
      }
    log('## Locating white cells (640×480 BCCD photos, decoded)');
    log();
    log(`- locateCells p50 ${ms(q(times, 0.5))}, p95 ${ms(q(times, 0.95))} (target ≤ 10 ms)`);
    log();
  }

  // Feature extraction from images (fresh cache) — what training spends most time on.
  if (haveShared) {
    const ex = await FeatureExtractor.load(resolveBackbonePath());
    const dir = mkdtempSync(join(tmpdir(), 'hv-bench-'));
    const items = (files as string[]).map((path) => ({ path }));
    for (const views of [1, 3]) {
      const t0 = performance.now();
      const f = await computeFeatures(items, ex, prep, { views, seed: 1, cacheDir: dir });
      const sec = (performance.now() - t0) / 1000;
      log(
        `- feature extraction, ${views} view(s) per image: ${(items.length / sec).toFixed(0)} images/s, ${(f.n / sec).toFixed(0)} rows/s`,
      );
    }
    const t0 = performance.now();
    await computeFeatures(items, ex, prep, { views: 3, seed: 1, cacheDir: dir });
    log(
      `- the same, read from cache: ${(items.length / ((performance.now() - t0) / 1000)).toFixed(0)} images/s`,
    );
    log();
    rmSync(dir, { recursive: true, force: true });
    await ex.close();
  }
  await classifier.close();

  await httpBench(buffers, log);

  reportSection();

  if (haveShared) await accuracySection(kaggleTest);

  if (existsSync(TFLITE)) fineTuneSection();

  if (!quick && haveShared) trainingBench();
  else keepEarlierSection(FROZEN_TRAINING);
  // Half an hour of fine-tuning is not re-run by every benchmark: the measured run is kept, with its date.
  keepEarlierSection(DEFAULT_TRAINING, true);
  keepEarlierSection(CROSS_LAB, true);
  keepEarlierSection(ADAPT_LAB, true);
  keepEarlierSection(KNOWS_AND_FLAGS, true);
  keepEarlierSection(INT8, true);
  keepEarlierSection(STORE_WRITES, true);
  keepEarlierSection(SPECIMEN, true);
  keepOtherSections();

  writeFileSync(resolve('BENCHMARKS.md'), lines.join('\n') + '\n');
  console.log('\nWrote BENCHMARKS.md');
}

/** The bundled model with its familiarity outputs stripped, written with a matching card to a temp folder. */
async function plainCopy(): Promise<Classifier> {
  const dir = mkdtempSync(join(tmpdir(), 'hv-bench-plain-'));
  const bytes = withoutFamiliarity(readFileSync(DEFAULT_MODEL_PATH));
  const card = JSON.parse(readFileSync(DEFAULT_MODEL_PATH.replace(/\.onnx$/, '.json'), 'utf8'));
  delete card.familiarity;
  card.modelSha256 = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(dir, 'model.onnx'), bytes);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(card));
  return Classifier.load(dir);
}

/** Kaggle TEST is read here, for the final report only: nothing is trained, tuned or chosen on it. */
async function accuracySection(kaggleTest: string): Promise<void> {
  const models = [DEFAULT_MODEL_PATH];
  process.argv.forEach((a, i) => {
    if (a === '--compare' && process.argv[i + 1]) models.push(resolve(process.argv[i + 1]));
  });
  log('## Accuracy on the Kaggle TEST folder (final report only)');
  log();
  log('TEST is 2487 augmented copies of 71 photos; 3 of those photos show the same cell as a TRAIN photo.');
  log(
    'Validation (grouped by source photo) chose every setting; TEST was scored once per shipped configuration.',
  );
  log();
  log('| model | backbone | crop | views per cell | accuracy | macro-F1 | ECE | no cell found | images/s |');
  log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const m of models) {
    const c = await Classifier.load(m);
    const name =
      m === DEFAULT_MODEL_PATH ? `bundled (${c.card.name})` : `${c.card.name}, ${relative('.', m)}`;
    const ft = c.card.backbone.fineTuned;
    const backbone = ft ? `fine-tuned from block ${ft.fromBlock}` : 'frozen';
    for (const tta of c.hasTta ? [false, true] : [false]) {
      const r = await evaluateModel(c, [kaggleTest], { tta });
      const views = tta ? '8 (`--tta`)' : '1 (default)';
      log(
        `| ${name} | ${backbone} | ${c.card.preprocessing.crop} | ${views} | ${r.accuracy.toFixed(3)} | ${r.macroF1.toFixed(3)} | ${r.ece.toFixed(3)} | ${r.noCell} | ${r.imagesPerSecond.toFixed(0)} |`,
      );
    }
    await c.close();
  }
  log();
}

/** The specimen PDF report, from scripts/bench-report.ts run as its own process. */
function reportSection(): void {
  const out = execFileSync('node', ['--import', 'tsx', 'scripts/bench-report.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  }).toString();
  log('## Specimen PDF report (a 200-cell specimen, `scripts/bench-report.ts`)');
  log();
  log(
    'Target: ≤ 2 s. Gallery = flagged or corrected cells with their crops; 7 renders each, after a warm-up.',
  );
  log();
  for (const line of out.trim().split('\n')) log(line);
  log();
}

/** Training-step cost of fine-tuning, from scripts/bench-finetune.ts run as its own process. */
function fineTuneSection(): void {
  const out = execFileSync('node', ['--import', 'tsx', 'scripts/bench-finetune.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  }).toString();
  log('## Fine-tuning step (batch 16, 224², ONNX Runtime training graphs + AdamW in TypeScript)');
  log();
  log('Targets: full network ≤ 80 ms/img, from block 13 (frozen prefix included) ≤ 25 ms/img.');
  log();
  log('```');
  for (const line of out.trim().split('\n')) log(line);
  log('```');
  log();
}

/**
 * A --quick run keeps the slow sections of the last full run, marked as such, instead of dropping them.
 * `verbatim` keeps a section this script never measures (it carries its own date).
 */
function keepEarlierSection(heading: string, verbatim = false): void {
  if (!existsSync('BENCHMARKS.md')) return;
  const old = readFileSync('BENCHMARKS.md', 'utf8');
  const start = old.indexOf(heading);
  if (start < 0) return;
  const end = old.indexOf('\n## ', start + heading.length);
  const section = old.slice(start, end < 0 ? undefined : end).trimEnd();
  const date = /- date: (\S+)/.exec(old)?.[1] ?? 'an earlier run';
  // A section kept before already names the full run it came from (the file's date is a quick run's).
  const [first, ...rest] = section.split('\n');
  const marked = first.includes('(from the full run of');
  log(verbatim || marked ? section : [`${first} (from the full run of ${date})`, ...rest].join('\n'));
  log();
}

/**
 * Every other section of the earlier file (written by its own study or benchmark script: replicas, the device,
 * reliability, fairness, …), kept verbatim in its order, so that no run of this script drops what it did not
 * measure.
 */
function keepOtherSections(): void {
  if (!existsSync('BENCHMARKS.md')) return;
  const written = new Set(
    lines.filter((l) => l.startsWith('## ')).map((l) => l.replace(/ \(from the full run of .*$/, '')),
  );
  const old = readFileSync('BENCHMARKS.md', 'utf8');
  for (const m of old.matchAll(/^## .*$/gm)) {
    const heading = m[0].replace(/ \(from the full run of .*$/, '');
    if (![...written].some((w) => w.startsWith(heading) || heading.startsWith(w)))
      keepEarlierSection(m[0], true);
  }
}

const FROZEN_TRAINING = '## Training a frozen-backbone head';
const DEFAULT_TRAINING = '## Training the default model';
/** Written from `npm run eval:cross-lab` (about 80 minutes), kept like the default training's timing. */
const CROSS_LAB = '## Across labs';
/** Written from `npm run eval:adapt-lab` (35 min a draw on shared cores), kept the same way. */
const ADAPT_LAB = '## Adapting to a lab';
/** Written from scripts/review-study.ts (leave one lab / one class out) and the flags tests, kept the same way. */
const KNOWS_AND_FLAGS = '## What the model knows and flags';
/** Written from scripts/bench-int8.ts (the int8 model against the float one), kept the same way. */
const INT8 = '## The int8 model';
/** Written from scripts/bench-store.ts (needs a PostgreSQL server), kept the same way. */
const STORE_WRITES = '## Store write latency';
/** Written from scripts/bench-specimen.ts (a 200-cell specimen through the server), kept the same way. */
const SPECIMEN = '## A 200-cell specimen through the server';

function trainingBench(): void {
  const cache = mkdtempSync(join(tmpdir(), 'hv-bench-train-'));
  const out = mkdtempSync(join(tmpdir(), 'hv-bench-model-'));
  const args = [
    'bin/hematovision.js',
    'train',
    '--data',
    join(SHARED, 'data/kaggle-blood-cells/TRAIN'),
    '--data',
    join(SHARED, 'data/pbc'),
    '--classes',
    'eosinophil,lymphocyte,monocyte,neutrophil',
    '--out',
    out,
    '--cache',
    cache,
  ];
  const run = () => {
    const t0 = performance.now();
    execFileSync('node', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    return (performance.now() - t0) / 1000;
  };
  const cold = run();
  const warm = run();
  log(`${FROZEN_TRAINING} (Kaggle TRAIN + PBC, 4 classes, \`train\` without --fine-tune)`);
  log();
  log(`- from images (empty feature cache): **${(cold / 60).toFixed(1)} min** (target ≤ 10 min)`);
  log(`- from the feature cache: **${warm.toFixed(0)} s** (target ≤ 30 s)`);
  log();
  rmSync(cache, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
}

await main();
