import type { Command } from 'commander';
import { DatasetError } from '../../errors.js';
import { trainModel } from '../../training/train.js';
import { pct, progressBar, table } from '../progress.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'Train a classifier head on labelled folders (one sub-folder per class) and write model.onnx + model.json',
    )
    .requiredOption('--data <dir>', 'a dataset folder; repeat to merge several sources', collect, [])
    .requiredOption('--out <dir>', 'output folder for model.onnx and model.json')
    .option('--classes <list>', 'comma-separated classes to train on (default: every class folder)')
    .option('--backbone <file>', 'backbone ONNX (default: .cache/backbone.onnx, else the bundled model)')
    .option(
      '--crop <mode>',
      "'cell' crops to the located white cell, 'whole' resizes the whole image",
      'cell',
    )
    .option('--crop-padding <f>', 'padding around the cell box, as a fraction of its side', '0')
    .option('--views <n>', 'views per training image (1 = no augmentation)', '3')
    .option('--val-fraction <f>', 'share of each class (grouped) held out for validation', '0.2')
    .option('--seed <n>', 'seed for the split and augmentation', '42')
    .option('--source-weight <name=w>', 'relative weight of a source in the loss; repeatable', collect, [])
    .option('--review-accuracy <f>', 'accuracy wanted among results not flagged for review', '0.95')
    .option('--name <name>', 'model name for the card', 'hematovision-wbc')
    .option('--cache <dir>', 'feature cache folder', '.cache/features')
    .option('--no-refit', 'keep the head trained on the training split only')
    .action(async (o) => {
      const num = (v: string, name: string, lo: number, hi: number) => {
        const x = Number(v);
        if (!Number.isFinite(x) || x < lo || x > hi)
          throw new DatasetError(`--${name} must be a number in [${lo}, ${hi}], got '${v}'.`);
        return x;
      };
      if (o.crop !== 'cell' && o.crop !== 'whole')
        throw new DatasetError(`--crop must be 'cell' or 'whole', got '${o.crop}'.`);
      const sourceWeights: Record<string, number> = {};
      for (const s of o.sourceWeight as string[]) {
        const [k, v] = s.split('=');
        if (!k || v === undefined) throw new DatasetError(`--source-weight takes name=weight, got '${s}'.`);
        sourceWeights[k] = num(v, 'source-weight', 0, 1e6);
      }
      const bar = progressBar('Backbone features');
      const r = await trainModel({
        data: o.data,
        out: o.out,
        classes: o.classes
          ? String(o.classes)
              .split(',')
              .map((c: string) => c.trim())
          : undefined,
        backbone: o.backbone,
        crop: o.crop,
        cropPadding: num(o.cropPadding, 'crop-padding', 0, 2),
        views: Math.round(num(o.views, 'views', 1, 32)),
        valFraction: num(o.valFraction, 'val-fraction', 0.05, 0.5),
        seed: Math.round(num(o.seed, 'seed', 0, 2 ** 31)),
        sourceWeights,
        reviewTargetAccuracy: num(o.reviewAccuracy, 'review-accuracy', 0.5, 1),
        cacheDir: o.cache,
        name: o.name,
        refit: o.refit,
        onStage: (s) => console.error(`» ${s}`),
        onFeatures: (d, t, c) => bar.update(d, t, `(${c} cached)`),
      });
      bar.stop();
      const c = r.card;
      console.log(
        `\nData: ${r.dataset.items.length} images, ${c.classes.length} classes, ${r.dataset.sources.length} source(s)` +
          (r.failed.length ? `; ${r.failed.length} not used (unreadable or no cell found)` : '') +
          (r.dataset.skipped.nonImage ? `; ${r.dataset.skipped.nonImage} non-image files skipped` : ''),
      );
      console.log(
        table(
          ['source', ...c.classes],
          r.dataset.sources.map((s) => [s.name, ...c.classes.map((k) => s.counts[k] ?? 0)]),
        ),
      );
      console.log('\nl2 chosen on validation:');
      console.log(
        table(
          ['l2', 'val NLL', 'val accuracy', 'seconds'],
          r.l2Table.map((t) => [t.l2, t.nll.toFixed(4), pct(t.accuracy), t.seconds.toFixed(1)]),
        ),
      );
      console.log(`\nValidation (grouped, unaugmented; temperature ${c.temperature.toFixed(3)}):`);
      console.log(
        table(
          ['class', 'precision', 'recall', 'F1', 'support'],
          c.classes.map((k) => {
            const p = r.validation.perClass[k];
            return [k, pct(p.precision), pct(p.recall), pct(p.f1), p.support];
          }),
        ),
      );
      console.log(
        `accuracy ${pct(r.validation.accuracy)}  macro-F1 ${pct(r.validation.macroF1)}  ECE ${r.validation.ece.toFixed(3)}  ` +
          `review below ${c.reviewThreshold.toFixed(2)}`,
      );
      for (const [s, v] of Object.entries(c.validation.perSource))
        console.log(`  ${s}: ${pct(v.accuracy)} of ${v.n}`);
      console.log(
        `\nTime: features ${r.seconds.features.toFixed(0)} s, head ${r.seconds.head.toFixed(0)} s, total ${r.seconds.total.toFixed(0)} s`,
      );
      console.log(`Wrote ${r.modelPath} and ${r.cardPath}`);
    });
}
