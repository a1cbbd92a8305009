/**
 * Learning from reviewed cells, end to end through the API (`npm run eval:adapt-api`; issue 16's target: with
 * 20 reviewed cells per class the candidate reaches what `npm run eval:adapt-lab` measured for the frozen
 * head, within 2 points). An in-process server (accounts off, a temp DATA_DIR) runs a 4-class model trained on
 * Kaggle only (frozen ImageNet features); the 20 PBC cells per class that scripts/few-shot.ts draws for the seed
 * are uploaded (POST /predict), each image's cell reviewed with its true label, an adaptation started and
 * followed. Then the candidate file the job stored and the active model as it is are scored on every other PBC
 * image of the four classes, as `hematovision evaluate` scores them (analyzeImage, an image without a cell
 * counting as a miss).
 *
 *   npx tsx scripts/adapt-api-study.ts [--model .cache/lolo-kaggle/model.onnx] [--seed 1] [--out dir]
 *
 * Needs ../shared/data/pbc (SHARED= overrides) and the model (made by `npx tsx scripts/review-study.ts --only
 * lolo`, copied to .cache/lolo-kaggle). Results: <out>/result.json and a Markdown row on stdout.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Classifier } from '../src/model/classifier.js';
import { pipeline } from '../src/pipeline.js';
import { buildApp } from '../src/server/app.js';
import { SwappableVision } from '../src/server/models/swappable.js';
import type { AdaptationResult } from '../src/server/models/adaptation.js';
import type { JobJsonShape } from '../src/api/models.js';
import { multipart } from '../src/testing/server.js';
import { evaluateModel } from '../src/training/evaluate.js';
import { FEW_SHOT_CLASSES, fewShotSplit } from './few-shot.js';

const ROOT = resolve(import.meta.dirname, '..');
const API = '/api/v1';
const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: join(ROOT, '.cache/lolo-kaggle/model.onnx') },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: join(ROOT, '.cache/adapt-api-study') },
  },
});
const seed = Number(args.seed);
const modelPath = resolve(args.model);
const out = resolve(args.out);
const PBC = join(process.env.SHARED ?? resolve(ROOT, '../shared'), 'data/pbc');
const PER_CLASS = 20;
if (!existsSync(modelPath)) {
  console.error(
    `No model at ${modelPath}. Make it with \`npx tsx scripts/review-study.ts --only lolo\` and copy its ` +
      'Kaggle-trained 4-class model (model.onnx, model.json) there, or pass --model.',
  );
  process.exit(1);
}
if (!existsSync(PBC) || !Number.isInteger(seed)) {
  console.error(`adapt-api-study needs ${PBC} and an integer --seed.`);
  process.exit(1);
}

const log = (s: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

// The same draw as eval:adapt-lab's `few-shot-split.ts pbc <pbc> <out> 20 <seed>`.
const split = join(out, `split-${seed}`);
const counts = await fewShotSplit('pbc', PBC, split, PER_CLASS, seed);
const few = FEW_SHOT_CLASSES.flatMap((label) => {
  const dir = join(split, 'few/TRAIN', label);
  return readdirSync(dir)
    .sort()
    .map((file) => ({ file, label, bytes: readFileSync(join(dir, file)) }));
});
log(`split: ${JSON.stringify(counts)}`);

const dataDir = mkdtempSync(join(tmpdir(), 'hv-adapt-api-'));
const load = (model: string) => pipeline({ model, worker: true });
const vision = new SwappableVision(await load(modelPath));
const app = await buildApp({
  auth: 'off',
  vision,
  dataDir,
  webDir: join(dataDir, 'no-web'),
  rateLimits: false,
  models: { path: modelPath, load },
});

/** A job as the API returns it, with an adaptation's result (the server's own types). */
type Job = Omit<JobJsonShape, 'result'> & { result: AdaptationResult | null };

let job: Job;
let candidatePath: string;
const uploads = { images: few.length, reviewed: 0, noCell: 0, severalCells: 0 };
const t0 = Date.now();
try {
  // Upload, then review each image's cell (the first, which is the image's answer) with its true label.
  for (let i = 0; i < few.length; i += 20) {
    const part = few.slice(i, i + 20);
    const res = await app.inject({
      method: 'POST',
      url: `${API}/predict`,
      ...(await multipart(part.map((c) => ({ name: c.file, bytes: c.bytes })))),
    });
    if (res.statusCode !== 200) throw new Error(`predict answered ${res.statusCode}: ${res.body}`);
    const cases = (res.json() as { cases: { id: string; cells: unknown[] }[] }).cases;
    for (const [j, c] of cases.entries()) {
      if (c.cells.length === 0) {
        uploads.noCell++;
        continue;
      }
      if (c.cells.length > 1) uploads.severalCells++;
      const r = await app.inject({
        method: 'POST',
        url: `${API}/cases/${c.id}/cells/0/review`,
        payload: { reviewLabel: part[j].label, reviewer: 'adapt-api-study' },
      });
      if (r.statusCode !== 200) throw new Error(`review answered ${r.statusCode}: ${r.body}`);
      uploads.reviewed++;
    }
  }
  log(`uploaded ${uploads.images}, reviewed ${uploads.reviewed} cells (${JSON.stringify(uploads)})`);

  const started = await app.inject({ method: 'POST', url: `${API}/adaptations`, payload: {} });
  if (started.statusCode !== 202)
    throw new Error(`adaptation answered ${started.statusCode}: ${started.body}`);
  job = started.json() as Job;
  for (let last = ''; ; await new Promise((r) => setTimeout(r, 1000))) {
    job = (await app.inject(`${API}/adaptations/${job.id}`)).json() as Job;
    const now = `${job.state} ${(100 * job.progress).toFixed(0)} % ${job.stage ?? ''}`;
    if (now !== last) log(`job ${now}`);
    last = now;
    if (job.state === 'succeeded' || job.state === 'failed') break;
  }
  if (job.state !== 'succeeded' || !job.result) throw new Error(`adaptation failed: ${job.error}`);
  // Written out under DATA_DIR/models/<sha256>/ as activating it would.
  candidatePath = (await app.modelRegistry!.materialize(job.result.candidateVersion)).modelPath;
} finally {
  await app.close();
  await vision.close();
}
const apiSeconds = (Date.now() - t0) / 1000;
const r = job.result!;
const c = r.comparison;
log(
  `job done in ${apiSeconds.toFixed(0)} s; held back ${c.heldOut} cells; counts ${JSON.stringify(r.counts)}`,
);
console.log("\nHeld-back reviewed cells (the job's own comparison):");
console.log('| model | accuracy | macro-F1 | review rate | silent errors |\n| --- | --- | --- | --- | --- |');
for (const [name, s] of [
  ['active', c.active],
  ['candidate', c.candidate],
] as const)
  console.log(
    `| ${name} | ${pct(s.accuracy)} | ${pct(s.macroF1)} | ${pct(s.reviewRate)} | ${pct(s.silentErrorRate)} |`,
  );

// The rest of PBC's four classes, as `hematovision evaluate` scores it.
const rest = join(split, 'rest/TRAIN');
async function score(path: string) {
  const classifier = await Classifier.load(path);
  const t = Date.now();
  try {
    const e = await evaluateModel(classifier, [rest]);
    log(`scored ${path}: ${e.n} images in ${((Date.now() - t) / 1000).toFixed(0)} s`);
    return {
      accuracy: e.accuracy,
      macroF1: e.macroF1,
      ece: e.ece,
      n: e.n,
      noCell: e.noCell,
      perClass: e.perClass,
      review: e.review,
    };
  } finally {
    await classifier.close();
  }
}
const active = await score(modelPath);
const candidate = await score(candidatePath!);
// How the candidate was calibrated (absent from cards made before candidates fitted their own).
const candidateCard = JSON.parse(readFileSync(candidatePath!.replace(/\.onnx$/, '.json'), 'utf8')) as {
  temperature: number;
  reviewThreshold: number;
  reviewedCells?: { calibration?: unknown };
};
const calibration = {
  temperature: candidateCard.temperature,
  reviewThreshold: candidateCard.reviewThreshold,
  ...(candidateCard.reviewedCells?.calibration ?? {}),
};
console.log(`candidate calibration: ${JSON.stringify(calibration)}`);
console.log(`ECE on the scored rest: active ${active.ece.toFixed(3)}, candidate ${candidate.ece.toFixed(3)}`);
rmSync(dataDir, { recursive: true, force: true });

const result = {
  date: new Date().toISOString(),
  seed,
  model: modelPath,
  split: counts,
  uploads,
  job: {
    id: job!.id,
    seconds: apiSeconds,
    counts: r.counts,
    recipe: r.recipe,
    comparison: c,
    candidateSha256: r.candidateSha256,
    calibration,
  },
  rest: { active, candidate },
  machine: { cores: cpus().length, loadavg: loadavg() },
};
mkdirSync(out, { recursive: true });
writeFileSync(join(out, `result-${seed}.json`), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(out, 'result.json'), JSON.stringify(result, null, 2) + '\n');
const f = (s: { accuracy: number; macroF1: number }) => `${pct(s.accuracy)} / ${pct(s.macroF1)}`;
log(`recipe: ${JSON.stringify(r.recipe)}`);
// Review on the scored rest: whether the candidate's checks, widened to the reviewed lab, still flag it all.
console.log('\nThe scored rest, review (flagged for any reason; by reason):');
console.log(
  '| model | review rate | silent errors | unfamiliar_image | unfamiliar_cell |\n| --- | --- | --- | --- | --- |',
);
for (const [name, s] of [
  ['active', active],
  ['candidate', candidate],
] as const)
  console.log(
    `| ${name} | ${pct(s.review.rate)} | ${pct(s.review.silentErrorRate)} | ` +
      `${pct(s.review.byReason.unfamiliar_image)} | ${pct(s.review.byReason.unfamiliar_cell)} |`,
  );
console.log(
  '\n| lab, few reviewed | draw | active model (Kaggle only) as it is | candidate from the API |\n| --- | --- | --- | --- |',
);
console.log(
  `| PBC, ${uploads.reviewed} cells reviewed of ${uploads.images} images (${candidate.n} scored) | ${seed} | ` +
    `${f(active)} | ${f(candidate)} |`,
);
