/**
 * What the review flags catch where the model is wrong: leave-one-lab-out (train on PBC, score all of
 * Kaggle TRAIN; train on Kaggle TRAIN, score all of PBC) and leave-one-class-out (train on both labs
 * without basophils, then without immature granulocytes, erythroblasts, platelets; score the left-out
 * cells). Each model is a frozen-backbone head with its familiarity checks, trained and scored exactly as
 * the product does (trainModel → familiarizeModel → analyzeImage on every image). Kaggle TEST is never read.
 *
 * Usage: npx tsx scripts/review-study.ts [--out dir] [--limit n] [--only lolo|loco]
 *   --limit n   at most n images per class and lab (a quick check of the script itself)
 * Writes <out>/review-study.md (the table BENCHMARKS.md quotes) and <out>/review-study.json.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBackboneModel } from '../src/model/backbone.js';
import { Classifier } from '../src/model/classifier.js';
import { checkDomain } from '../src/model/domain.js';
import { scanDatasets, type DatasetItem } from '../src/training/dataset.js';
import { familiarizeModel } from '../src/training/familiarize.js';
import { reviewStats, type ReviewedAnswer } from '../src/training/review.js';
import { groupedStratifiedSplit } from '../src/training/split.js';
import { writeAtomic } from '../src/training/files.js';
import { trainModel } from '../src/training/train.js';
import { analyzeItems } from './analyze-items.js';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: '.cache/review-study' },
    limit: { type: 'string' },
    only: { type: 'string' },
  },
});
const SHARED = resolve(process.env.SHARED ?? '../shared');
const KAGGLE = join(SHARED, 'data/kaggle-blood-cells/TRAIN');
const PBC = join(SHARED, 'data/pbc');
const TFLITE = join(SHARED, 'weights/mobilenet_v2_1.0_224_quant.tflite');
for (const p of [KAGGLE, PBC, TFLITE])
  if (!existsSync(p)) throw new Error(`The review study needs ${p} (../shared is not in the repository).`);
const OUT = resolve(args.out!);
const LIMIT = args.limit ? Number(args.limit) : undefined;
const CACHE = resolve('.cache/features');
const VAL_FRACTION = 0.2;
const SEED = 42;
const FOUR = ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'];
const EIGHT = [...FOUR, 'basophil', 'ig', 'erythroblast', 'platelet'];
mkdirSync(OUT, { recursive: true });

const backbone = resolve('.cache/backbone.onnx');
if (!existsSync(backbone)) writeAtomic(backbone, buildBackboneModel(readFileSync(TFLITE)));

/** With --limit, a folder of symlinks holding the first n images of each class (same names). */
async function limited(dir: string): Promise<string> {
  if (!LIMIT) return dir;
  const ds = await scanDatasets([dir]);
  const root = join(OUT, 'limited', basename(dir));
  rmSync(root, { recursive: true, force: true });
  const taken: Record<string, number> = {};
  for (const it of ds.items) {
    if ((taken[it.label] = (taken[it.label] ?? 0) + 1) > LIMIT) continue;
    mkdirSync(join(root, it.label), { recursive: true });
    symlinkSync(it.path, join(root, it.label, basename(it.path)));
  }
  return root;
}

interface Scored {
  answers: ReviewedAnswer[];
  images: { distance?: { cell: number; image: number } }[];
  perClass: Record<string, { n: number; flagged: number; correct: number }>;
  unreadable: number;
}

/** Every item through the product's own path (scripts/analyze-items.ts), tallied per class. */
async function score(classifier: Classifier, items: Pick<DatasetItem, 'path' | 'label'>[]): Promise<Scored> {
  const s: Scored = { answers: [], images: [], perClass: {}, unreadable: 0 };
  const { unreadable } = await analyzeItems(classifier, items, (it, r, answer) => {
    s.answers.push(answer);
    s.images.push(r);
    const c = (s.perClass[it.label] ??= { n: 0, flagged: 0, correct: 0 });
    c.n++;
    if (r.needsReview) c.flagged++;
    if (answer.correct) c.correct++;
  });
  s.unreadable = unreadable;
  return s;
}

/** Trains a frozen-backbone model with its familiarity checks and returns it with its validation items. */
async function trainStudyModel(name: string, data: string[], classes: string[]) {
  const out = join(OUT, name);
  console.error(`» ${name}: training on ${data.map((d) => basename(d)).join(' + ')} (${classes.join(', ')})`);
  const r = await trainModel({
    data,
    out,
    classes,
    backbone,
    crop: 'cell',
    cropPadding: 0,
    views: 1,
    seed: SEED,
    valFraction: VAL_FRACTION,
    reviewTargetAccuracy: 0.95,
    cacheDir: CACHE,
    name,
    refit: false,
    testTimeViews: false,
  });
  await familiarizeModel({ model: out, data, valFraction: VAL_FRACTION, cacheDir: CACHE });
  const split = groupedStratifiedSplit(r.dataset.items, { valFraction: VAL_FRACTION, seed: SEED });
  return { classifier: await Classifier.load(out), val: split.val.map((i) => r.dataset.items[i]) };
}

const rows: Record<string, unknown>[] = [];
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : '–');

function report(test: string, scoredOn: string, s: Scored, extra: Record<string, unknown> = {}) {
  const v = reviewStats(s.answers);
  const acc = s.answers.filter((a) => a.correct).length / Math.max(1, s.answers.length);
  const domain = checkDomain(s.images);
  const row = { test, scoredOn, accuracy: acc, ...v, domain, perClass: s.perClass, ...extra };
  rows.push(row);
  console.error(
    `  ${test} → ${scoredOn}: n ${v.n} acc ${pct(acc)} review ${pct(v.rate)} accepted ${pct(v.acceptedAccuracy)} ` +
      `silent ${pct(v.silentErrorRate)}${domain ? ` domain ${domain.score} (${domain.unfamiliar ? 'unfamiliar' : 'familiar'})` : ''}`,
  );
}

const kaggle = await limited(KAGGLE);
const pbc = await limited(PBC);

if (args.only !== 'loco') {
  // PBC → Kaggle: eight classes learned; Kaggle holds four of them.
  {
    const m = await trainStudyModel('lolo-pbc', [pbc], EIGHT);
    report('LOLO: trained on PBC', 'PBC validation (own lab)', await score(m.classifier, m.val));
    report(
      'LOLO: trained on PBC',
      'all of Kaggle TRAIN',
      await score(m.classifier, (await scanDatasets([kaggle])).items),
    );
    await m.classifier.close();
  }
  // Kaggle → PBC: four classes learned; PBC's other four are cells it never saw (always wrong if accepted).
  {
    const m = await trainStudyModel('lolo-kaggle', [kaggle], FOUR);
    report('LOLO: trained on Kaggle', 'Kaggle validation (own lab)', await score(m.classifier, m.val));
    report(
      'LOLO: trained on Kaggle',
      'all of PBC (8 classes)',
      await score(m.classifier, (await scanDatasets([pbc])).items),
    );
    await m.classifier.close();
  }
}

if (args.only !== 'lolo') {
  for (const left of ['basophil', 'ig', 'erythroblast', 'platelet']) {
    const m = await trainStudyModel(
      `loco-${left}`,
      [kaggle, pbc],
      EIGHT.filter((c) => c !== left),
    );
    report(`LOCO: without ${left}`, 'validation (both labs)', await score(m.classifier, m.val));
    const cells = (await scanDatasets([pbc])).items.filter((it) => it.label === left);
    const s = await score(m.classifier, cells);
    report(`LOCO: without ${left}`, `every PBC ${left}`, s, {
      leftOutFlagged: s.perClass[left] ? s.perClass[left].flagged / s.perClass[left].n : NaN,
    });
    await m.classifier.close();
  }
}

const md = [
  `Review study (${new Date().toISOString().slice(0, 10)}; frozen MobileNetV2 features, softmax head, familiarity ` +
    `checks fitted on training rows, thresholds on validation rows${LIMIT ? `; at most ${LIMIT} images per class and lab` : ''}).`,
  '',
  '| test | scored on | images | accuracy | review rate | accepted accuracy | silent errors | flagged as unfamiliar (cell / image) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => {
    const b = r.byReason as Record<string, number>;
    return (
      `| ${r.test} | ${r.scoredOn} | ${r.n} | ${pct(r.accuracy as number)} | ${pct(r.rate as number)} | ` +
      `${pct(r.acceptedAccuracy as number)} | ${pct(r.silentErrorRate as number)} | ` +
      `${pct(b.unfamiliar_cell)} / ${pct(b.unfamiliar_image)} |`
    );
  }),
].join('\n');
writeFileSync(join(OUT, 'review-study.md'), md + '\n');
writeFileSync(join(OUT, 'review-study.json'), JSON.stringify(rows, null, 2) + '\n');
console.log(md);
