/**
 * Leave-one-lab-out with alignment (`npm run eval:align`): a frozen-backbone model (ImageNet MobileNetV2 +
 * a head trained on one lab's four classes) is scored on the other lab's images as it is, then aligned to
 * that lab's images without their labels (`hematovision adapt`) and scored again. Both directions: PBC →
 * Kaggle TRAIN and Kaggle TRAIN → PBC (its four classes). Kaggle TEST is never read.
 *
 * Usage: npx tsx scripts/align-study.ts [out-dir]  (default .cache/align-study; models trained there when
 * missing, reused otherwise). Results in <out-dir>/align-study.md and .json.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const SHARED = process.env.SHARED ?? resolve(ROOT, '../shared');
const OUT = resolve(process.argv[2] ?? join(ROOT, '.cache/align-study'));
const KAGGLE = join(SHARED, 'data/kaggle-blood-cells/TRAIN');
const PBC = join(SHARED, 'data/pbc');
const TFLITE = join(SHARED, 'weights/mobilenet_v2_1.0_224_quant.tflite');
const CLASSES = ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'];

for (const f of [KAGGLE, PBC, TFLITE])
  if (!existsSync(f)) {
    console.error(`align-study needs ${f} (../shared); it is not in the repository.`);
    process.exit(1);
  }
mkdirSync(OUT, { recursive: true });

async function cli(args: string[], log?: string): Promise<string> {
  const t0 = Date.now();
  const r = await run('node', [join(ROOT, 'bin/hematovision.js'), ...args], {
    cwd: ROOT,
    maxBuffer: 1 << 28,
  });
  if (log) writeFileSync(join(OUT, log), r.stderr + r.stdout);
  console.error(`  ${args[0]} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return r.stdout;
}

interface Scored {
  accuracy: number;
  macroF1: number;
  n: number;
  noCell: number;
  review: {
    rate: number;
    silentErrorRate: number;
    acceptedAccuracy: number;
    byReason: Record<string, number>;
  };
}

async function evaluate(model: string, data: string, name: string): Promise<Scored> {
  const json = join(OUT, `${name}.json`);
  const out = await cli(['evaluate', '--data', data, '--model', model, '--json']);
  writeFileSync(json, out);
  return JSON.parse(out) as Scored;
}

/** A frozen-backbone model trained on one lab, with its training statistics (added by familiarize). */
async function sourceModel(name: string, data: string, extra: string[] = []): Promise<string> {
  const dir = join(OUT, name);
  if (!existsSync(join(dir, 'model.json'))) {
    console.error(`» Training ${name} (frozen backbone) on ${data}`);
    await cli(['import-backbone', '--tflite', TFLITE, '--out', join(ROOT, '.cache/backbone.onnx')]);
    await cli(
      ['train', '--data', data, '--classes', CLASSES.join(','), '--name', name, '--out', dir, ...extra],
      `${name}.log`,
    );
  }
  const card = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  if (!card.activationStats) {
    console.error(`» Training statistics of ${name}`);
    await cli(['familiarize', '--stats-only', '--model', dir, '--data', data], `${name}-stats.log`);
  }
  return dir;
}

interface Row {
  direction: string;
  unaligned: Scored;
  aligned: Scored;
  adaptSeconds: number;
  adaptImages: number;
  adaptOutput: string;
}

async function direction(
  label: string,
  model: string,
  targetFolders: string[],
  scoreOn: string,
  slug: string,
): Promise<Row> {
  console.error(`» ${label}`);
  const unaligned = await evaluate(model, scoreOn, `${slug}-unaligned`);
  const out = join(OUT, `${slug}-aligned`);
  const lab = slug.split('-to-')[1];
  const t0 = Date.now();
  const adaptOutput = await cli(
    ['adapt', '--model', model, ...targetFolders.flatMap((d) => ['--data', d]), '--lab', lab, '--out', out],
    `${slug}-adapt.log`,
  );
  const adaptSeconds = (Date.now() - t0) / 1000;
  const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  const aligned = await evaluate(out, scoreOn, `${slug}-aligned`);
  return {
    direction: label,
    unaligned,
    aligned,
    adaptSeconds,
    adaptImages: card.adaptation.images,
    adaptOutput,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

const pbcModel = await sourceModel('pbc-frozen', PBC);
// One view per image (no augmented copies) for Kaggle's 9957 images: the head trains in a third of the time; no test-time views calibrated (not used here).
const kaggleModel = await sourceModel('kaggle-frozen', KAGGLE, ['--views', '1', '--no-test-time-views']);
// The smaller direction first (PBC's four classes: 3611 images to score, Kaggle TRAIN 9957).
const rows = [
  await direction(
    'Kaggle TRAIN → PBC (4 classes)',
    kaggleModel,
    CLASSES.map((c) => join(PBC, c)),
    PBC,
    'kaggle-to-pbc',
  ),
  await direction('PBC → Kaggle TRAIN', pbcModel, [KAGGLE], KAGGLE, 'pbc-to-kaggle'),
];

const lines = [
  `- date: ${new Date().toISOString()}; machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average at the end ${loadavg()[0].toFixed(1)}`,
  '',
  '| trained on → scored on | images | accuracy, as it is → aligned | macro-F1 | flagged for review | silent errors (wrong, not flagged) | flagged `unfamiliar_image` | flagged `unfamiliar_cell` | adapt: images read, wall time |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => {
    const [u, a] = [r.unaligned, r.aligned];
    const arrow = (f: (s: Scored) => number) => `${pct(f(u))} → ${pct(f(a))}`;
    return (
      `| ${r.direction} | ${u.n} | **${arrow((s) => s.accuracy)}** | ${arrow((s) => s.macroF1)} | ` +
      `${arrow((s) => s.review.rate)} | ${arrow((s) => s.review.silentErrorRate)} | ` +
      `${arrow((s) => s.review.byReason.unfamiliar_image ?? 0)} | ${arrow((s) => s.review.byReason.unfamiliar_cell ?? 0)} | ` +
      `${r.adaptImages}, ${r.adaptSeconds.toFixed(0)} s |`
    );
  }),
];
writeFileSync(join(OUT, 'align-study.md'), lines.join('\n') + '\n');
writeFileSync(join(OUT, 'align-study.json'), JSON.stringify(rows, null, 2));
console.log(lines.join('\n'));
for (const r of rows) console.log(`\n${r.direction}, adapt said:\n${r.adaptOutput}`);
