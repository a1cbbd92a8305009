import type { Command } from 'commander';
import { DatasetError } from '../../errors.js';
import { DEFAULT_MODEL_PATH } from '../../model/classifier.js';
import { adaptModel, ADAPT_DEFAULTS, MIN_ADAPT_IMAGES } from '../../training/adapt.js';
import type { Io } from '../io.js';
import { pct, progressBar } from '../progress.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerAdapt(program: Command, io: Io): void {
  program
    .command('adapt')
    .description(
      `Align a model to a lab's own images, no labels needed (at least ${MIN_ADAPT_IMAGES}): every ` +
        "convolution is rescaled so the lab's images give it the training data's statistics; writes a new " +
        'model folder for predict --model',
    )
    .requiredOption(
      '--data <dir>',
      "a folder of the lab's images (sub-folders read too); repeatable",
      collect,
      [],
    )
    .requiredOption('--out <dir>', 'folder for the adapted model (the parent model is not changed)')
    .option('--model <dir>', 'the model to adapt: folder or model.onnx (default: the bundled model)')
    .option('--lab <name>', "the lab's name in the card (default: the folder's name)")
    .option(
      '--reference <dir>',
      'a folder the model was trained on, when its card carries no training statistics; repeatable',
      collect,
      [],
    )
    .option(
      '--max-images <n>',
      'images read at most (an even sample beyond)',
      String(ADAPT_DEFAULTS.maxImages),
    )
    .option('--passes <n>', 'alignment passes', String(ADAPT_DEFAULTS.passes))
    .action(async (o) => {
      let bar = progressBar('Images', io);
      const r = await adaptModel({
        data: o.data,
        model: o.model ?? DEFAULT_MODEL_PATH,
        out: o.out,
        lab: o.lab,
        reference: o.reference,
        maxImages: positiveInt(o.maxImages, '--max-images'),
        passes: positiveInt(o.passes, '--passes'),
        onStage: (s) => {
          bar.stop();
          io.err(`» ${s}`);
          bar = progressBar('Images', io);
        },
        onProgress: (d, t) => bar.update(d, t),
      }).finally(() => bar.stop());
      const a = r.card.adaptation!;
      io.out(
        `Adapted ${a.parent.name} to ${a.folders.join(', ')}: ${a.images} images` +
          (a.found > a.images + a.skipped ? ` (an even sample of the ${a.found} found)` : '') +
          (a.skipped > 0 ? `, ${a.skipped} unusable skipped` : '') +
          `, ${a.passes} passes, ${r.seconds.toFixed(1)} s.`,
      );
      const [first, last] = [r.mismatch[0], r.mismatch[r.mismatch.length - 1]];
      io.out(
        `Channel statistics vs training (median channel, in training standard deviations): mean off by ` +
          `${first.medianMean.toFixed(3)} → ${last.medianMean.toFixed(3)}, spread off by ` +
          `${pct(first.medianStd)} → ${pct(last.medianStd)}.`,
      );
      const f = r.flagged;
      if (f.before && f.after)
        io.out(
          `Lab images flagged unfamiliar_image: ${pct(f.before.unfamiliarImage)} by the parent's check → ` +
            `${pct(f.after.unfamiliarImage)} by the refitted one (images held out of its fit); ` +
            `unfamiliar_cell (kept): ${pct(f.before.unfamiliarCell)} → ${pct(f.after.unfamiliarCell)}.`,
        );
      io.out(
        `Wrote ${r.modelPath} with its card. Confidence and familiarity thresholds are the parent's: check ` +
          'a few results by eye before relying on them.',
      );
    });
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new DatasetError(`${name} must be a whole number ≥ 1, not '${v}'.`);
  return n;
}
