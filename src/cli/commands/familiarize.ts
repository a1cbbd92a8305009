import type { Command } from 'commander';
import { DatasetError } from '../../errors.js';
import type { FamiliarityRecord } from '../../model/types.js';
import { addTrainingStats, familiarizeModel } from '../../training/familiarize.js';
import type { Io } from '../io.js';
import { pct, progressBar } from '../progress.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerFamiliarize(program: Command, io: Io): void {
  program
    .command('familiarize')
    .description(
      'Give a trained model its checks for unfamiliar cells and images (review reasons unfamiliar_cell and ' +
        'unfamiliar_image), fitted on the folders it was trained on; train does this itself',
    )
    .requiredOption('--model <dir>', 'model folder (or model.onnx) to update in place')
    .requiredOption('--data <dir>', 'a folder the model was trained on; repeat for each', collect, [])
    .option('--val-fraction <f>', 'the share held out when it was trained (same grouped split)', '0.2')
    .option('--cache <dir>', 'feature cache folder', '.cache/features')
    .option(
      '--stats-only',
      'only measure the training statistics that `adapt` aligns a lab to (the model file is left as it is)',
    )
    .action(async (o) => {
      if (o.statsOnly) {
        io.err('» Training statistics of every convolution (for hematovision adapt)');
        const bar = progressBar('Images', io);
        const card = await addTrainingStats({
          model: o.model,
          data: o.data,
          onProgress: (d, t) => bar.update(d, t),
        }).finally(() => bar.stop());
        const s = card.activationStats!;
        io.out(
          `Wrote ${s.file}: ${s.images} images (${Object.entries(s.bySource)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}).`,
        );
        return;
      }
      await familiarizeCli(io, o.model, o.data, Number(o.valFraction), o.cache);
    });
}

/**
 * Fits the familiarity checks of a model just written (or an older one) and says what they flag. After
 * `train` (`afterTraining`), data too small for the checks leaves the model as written, with a note: the
 * model is still usable, flagging low confidence only.
 */
export async function familiarizeCli(
  io: Io,
  model: string,
  data: string[],
  valFraction: number,
  cache: string,
  afterTraining = false,
) {
  io.err('» Familiarity: the model’s features of its training images');
  let bar = progressBar('Features', io);
  let r;
  try {
    r = await familiarizeModel({
      model,
      data,
      valFraction,
      cacheDir: cache,
      onProgress: (d, t, c) => bar.update(d, t, c > 0 ? `(${c} cached)` : ''),
      onStage: (s) => {
        bar.stop();
        io.err(`» ${s}`);
        bar = progressBar('Images', io);
      },
    });
  } catch (e) {
    if (!(afterTraining && e instanceof DatasetError)) throw e;
    io.err(
      `Familiarity checks skipped: ${e.message} The model flags low confidence only; ` +
        "with more images, 'hematovision familiarize' adds the checks.",
    );
    return;
  } finally {
    bar.stop();
  }
  printFamiliarity(r.card.familiarity!, r.card.reviewThreshold, io);
}

export function printFamiliarity(f: FamiliarityRecord, reviewThreshold: number, io: Io): void {
  const v = f.validation;
  io.out(
    `\nFamiliarity checks: a cell is unfamiliar beyond the ${pct(f.cell.quantile)} point of validation cells' ` +
      `distance to their nearest class; an image beyond the ${pct(f.image.quantile)} point of their distance ` +
      `to the nearest training lab (${f.image.components.join(', ')}).`,
  );
  if (f.disagreement)
    io.out(
      `A cell is also unfamiliar where the block heads disagree beyond the ${pct(f.disagreement.quantile)} ` +
        `point of its lab's validation cells (${Object.entries(f.disagreement.thresholds)
          .map(([lab, t]) => `${lab} ${t.toFixed(3)}`)
          .join(', ')}).`,
    );
  if (f.neighbours)
    io.out(
      `And where its ${f.neighbours.k}th nearest of ${f.neighbours.rows} stored training cells is further than ` +
        `the ${pct(f.neighbours.quantile)} point of its lab's validation cells (${Object.entries(
          f.neighbours.thresholds,
        )
          .map(([lab, t]) => `${lab} ${t.toFixed(3)}`)
          .join(', ')}).`,
    );
  if (v)
    io.out(
      `On ${v.n} validation images they flag ${pct(v.reviewRate)} ` +
        `(unfamiliar cell ${pct(v.byReason.unfamiliar_cell ?? 0)}` +
        (v.byReason.disagreement !== undefined
          ? `, of which disagreement ${pct(v.byReason.disagreement)}`
          : '') +
        (v.byReason.neighbours !== undefined ? `, nearest cells ${pct(v.byReason.neighbours)}` : '') +
        `, unfamiliar image ${pct(v.byReason.unfamiliar_image ?? 0)}).`,
    );
  const b = f.reviewBudget;
  if (b)
    io.out(
      `Review budget ${pct(b.budget)} per training lab: confidence threshold ${b.before.toFixed(3)} → ` +
        `${reviewThreshold.toFixed(3)}; validation images flagged for any reason: ${Object.entries(
          b.reviewRate,
        )
          .map(([s, r]) => `${s} ${pct(r)}`)
          .join(', ')}.`,
    );
}
