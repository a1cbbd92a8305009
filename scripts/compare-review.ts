/**
 * Two models side by side on the validation images they share (the grouped split `train` drew with the
 * first card's seed), through the product's path (analyzeImage): accuracy, review rate, accuracy of the
 * answers not flagged and silent errors, per training lab. For a model re-familiarized or re-thresholded: does
 * the change catch more of its own errors at the same review budget? Kaggle TEST is never read.
 *
 * Usage: npx tsx scripts/compare-review.ts --model models --model .cache/bundled-new [--data dir ...]
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Classifier, cardPathFor, resolveModelPath } from '../src/model/classifier.js';
import type { ModelCard } from '../src/model/types.js';
import { scanDatasets } from '../src/training/dataset.js';
import { reviewStats, type ReviewedAnswer } from '../src/training/review.js';
import { groupedStratifiedSplit } from '../src/training/split.js';
import { analyzeItems } from './analyze-items.js';

const { values: args } = parseArgs({
  options: { model: { type: 'string', multiple: true }, data: { type: 'string', multiple: true } },
});
const SHARED = resolve(process.env.SHARED ?? '../shared');
const models = args.model ?? [];
if (models.length === 0) throw new Error('Give --model at least once.');
const data = args.data ?? [join(SHARED, 'data/kaggle-blood-cells/TRAIN'), join(SHARED, 'data/pbc')];
const card = JSON.parse(readFileSync(cardPathFor(resolveModelPath(models[0])), 'utf8')) as ModelCard;
const ds = await scanDatasets(data, { classes: card.classes });
const split = groupedStratifiedSplit(ds.items, { valFraction: 0.2, seed: card.training.seed });
const val = split.val.map((i) => ds.items[i]);
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : '–');

console.log(
  '| model | lab | images | accuracy | review rate | accepted accuracy | silent errors | low conf. / unfam. cell / unfam. image |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const m of models) {
  const classifier = await Classifier.load(m);
  const byLab = new Map<string, ReviewedAnswer[]>();
  await analyzeItems(classifier, val, (it, _, answer) => {
    const lab = ds.sources[it.source].name;
    if (!byLab.has(lab)) byLab.set(lab, []);
    byLab.get(lab)!.push(answer);
  });
  await classifier.close();
  for (const [lab, answers] of [...byLab].sort()) {
    const s = reviewStats(answers);
    const acc = answers.filter((a) => a.correct).length / answers.length;
    const b = s.byReason;
    console.log(
      `| ${m} | ${lab} | ${s.n} | ${pct(acc)} | ${pct(s.rate)} | ${pct(s.acceptedAccuracy)} | ` +
        `${pct(s.silentErrorRate)} | ${pct(b.low_confidence)} / ${pct(b.unfamiliar_cell)} / ${pct(b.unfamiliar_image)} |`,
    );
  }
}
