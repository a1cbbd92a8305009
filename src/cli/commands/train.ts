import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DatasetError, ModelError } from '../../errors.js';
import { AUGMENT_PRESETS, type AugmentPreset } from '../../imaging/augment.js';
import {
  FINE_TUNE_DEFAULTS,
  FINE_TUNE_LIMITS,
  fineTuneModel,
  LAST_BLOCK,
  SHARED_TFLITE,
  type FineTuneResult,
} from '../../training/finetune.js';
import type { ModelCard } from '../../model/types.js';
import type { Metrics } from '../../training/metrics.js';
import { DEFAULT_REVIEW_ACCURACY } from '../../training/held-out.js';
import { trainModel } from '../../training/train.js';
import type { Io } from '../io.js';
import { pct, perClassTable, progressBar, table } from '../progress.js';
import { familiarizeCli } from './familiarize.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const FT = FINE_TUNE_DEFAULTS;

export function registerTrain(program: Command, io: Io): void {
  program
    .command('train')
    .description(
      'Train a classifier head on labelled folders (one sub-folder per class) and write model.onnx + model.json; ' +
        'with --fine-tune, the MobileNetV2 blocks (all by default) train with it',
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
    .option(
      '--review-accuracy <f>',
      'accuracy wanted among results not flagged for review',
      String(DEFAULT_REVIEW_ACCURACY),
    )
    .option('--name <name>', 'model name for the card', 'hematovision-wbc')
    .option('--cache <dir>', 'feature cache folder', '.cache/features')
    .option('--no-refit', 'keep the head trained on the training split only')
    .option(
      '--no-familiarity',
      'skip fitting the checks for unfamiliar cells and images (the model then flags low confidence only)',
    )
    .option(
      '--no-test-time-views',
      'skip calibrating test-time augmentation (8 flips and turns, predict --tta): the model then offers one view only',
    )
    .option(
      '--fine-tune',
      'also train the MobileNetV2 blocks (all by default; from the TFLite weights) with the head',
    )
    .option(
      '--tflite <file>',
      'MobileNetV2 TFLite weights for --fine-tune (default: ../shared/weights/mobilenet_v2_1.0_224_quant.tflite beside the repository, when present)',
    )
    .option(
      '--from <model.onnx>',
      "--fine-tune: start from this HematoVision model's network (e.g. models/model.onnx, to adapt it to your " +
        "lab's images) instead of the ImageNet weights; the head is refitted, so classes may differ",
    )
    .option(
      '--train-from-block <b>',
      `--fine-tune: first trained block, 0–${LAST_BLOCK} or 'all' (default: ${FT.trainFromBlock === 0 ? 'all' : FT.trainFromBlock})`,
    )
    .option(
      '--train-blocks <k>',
      `--fine-tune: train the last k blocks (same as --train-from-block ${LAST_BLOCK + 1}−k)`,
    )
    .option('--epochs <n>', '--fine-tune: maximum epochs (early stopping may end sooner)', String(FT.epochs))
    .option('--batch-size <n>', '--fine-tune: images per step', String(FT.batchSize))
    .option(
      '--accumulate <n>',
      '--fine-tune: add up the gradients of n batches before each update (n × batch-size images an update, ' +
        "one batch's memory)",
      String(FT.accumulate),
    )
    .option(
      '--lr <f>',
      '--fine-tune: peak learning rate of the backbone (AdamW, warm-up + cosine)',
      String(FT.lr),
    )
    .option('--head-lr <f>', '--fine-tune: peak learning rate of the head', String(FT.headLr))
    .option('--weight-decay <f>', '--fine-tune: AdamW weight decay (not on biases)', String(FT.weightDecay))
    .option('--warmup-epochs <f>', '--fine-tune: linear warm-up length', String(FT.warmupEpochs))
    .option('--label-smoothing <f>', '--fine-tune: label smoothing', String(FT.labelSmoothing))
    .option(
      '--augment <preset>',
      "--fine-tune: augmentation, 'default' (for images like the training ones, from one lab) or 'cross-lab' " +
        '(wide colour, stain and sharpness changes, for labs never seen)',
      FT.augment,
    )
    .option(
      '--patience <n>',
      '--fine-tune: stop after n epochs without a better validation NLL',
      String(FT.patience),
    )
    .option(
      '--workers <n>',
      '--fine-tune: augmentation threads beside ONNX Runtime (0 or 1)',
      String(FT.workers),
    )
    .option(
      '--keep <which>',
      "--fine-tune: 'best' keeps the epoch with the lowest validation NLL (early stopping); 'last' runs every epoch and keeps the end",
      FT.keep,
    )
    .option('--resume', '--fine-tune: continue the run checkpointed in <out>/checkpoint')
    .action(async (o, cmd: Command) => {
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
      const fineTuneOnly = [
        'tflite',
        'from',
        'trainFromBlock',
        'trainBlocks',
        'epochs',
        'batchSize',
        'accumulate',
        'lr',
        'headLr',
        'weightDecay',
        'warmupEpochs',
        'labelSmoothing',
        'augment',
        'keep',
        'patience',
        'workers',
        'resume',
      ];
      const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
      // Options both training modes share, parsed and checked one way.
      const commonOptions = () => ({
        data: o.data as string[],
        out: o.out as string,
        classes: o.classes
          ? String(o.classes)
              .split(',')
              .map((c: string) => c.trim())
          : undefined,
        crop: o.crop as 'cell' | 'whole',
        cropPadding: num(o.cropPadding, 'crop-padding', 0, 2),
        valFraction: num(o.valFraction, 'val-fraction', 0.05, 0.5),
        seed: Math.round(num(o.seed, 'seed', 0, 2 ** 31)),
        sourceWeights,
        reviewTargetAccuracy: num(o.reviewAccuracy, 'review-accuracy', 0.5, 1),
        cacheDir: o.cache as string,
        name: o.name as string,
        testTimeViews: o.testTimeViews as boolean,
      });
      if (!o.fineTune) {
        const stray = fineTuneOnly.filter(given);
        if (stray.length > 0)
          throw new DatasetError(
            `${stray.map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} only appl${stray.length > 1 ? 'y' : 'ies'} with --fine-tune.`,
          );
      } else {
        for (const n of ['backbone', 'views', 'refit'])
          if (given(n))
            throw new DatasetError(
              `--${n === 'refit' ? 'no-refit' : n} does not apply to --fine-tune (it starts from --tflite, ` +
                'augments every epoch and keeps validation for early stopping).',
            );
        await fineTune(io, o, commonOptions(), num);
        if (o.familiarity)
          await familiarizeCli(io, o.out, o.data, commonOptions().valFraction, o.cache, true);
        return;
      }
      let bar: ReturnType<typeof progressBar> | null = null;
      const r = await trainModel({
        ...commonOptions(),
        backbone: o.backbone,
        views: Math.round(num(o.views, 'views', 1, 32)),
        refit: o.refit,
        onStage: (s) => {
          bar?.stop();
          bar = null;
          io.err(`» ${s}`);
        },
        onFeatures: (d, t, c) => (bar ??= progressBar('Backbone features', io)).update(d, t, `(${c} cached)`),
        onViews: (d, t) => (bar ??= progressBar('Test-time views', io)).update(d, t),
      });
      (bar as ReturnType<typeof progressBar> | null)?.stop();
      const c = r.card;
      io.out(
        `\nData: ${r.dataset.items.length} images, ${c.classes.length} classes, ${r.dataset.sources.length} source(s)` +
          (r.failed.length ? `; ${r.failed.length} not used (unreadable or no cell found)` : '') +
          (r.dataset.skipped.nonImage ? `; ${r.dataset.skipped.nonImage} non-image files skipped` : ''),
      );
      io.out(
        table(
          ['source', ...c.classes],
          r.dataset.sources.map((s) => [s.name, ...c.classes.map((k) => s.counts[k] ?? 0)]),
        ),
      );
      io.out('\nl2 chosen on validation:');
      io.out(
        table(
          ['l2', 'val NLL', 'val accuracy', 'seconds'],
          r.l2Table.map((t) => [t.l2, t.nll.toFixed(4), pct(t.accuracy), t.seconds.toFixed(1)]),
        ),
      );
      printValidation(io, c, r.validation);
      io.out(
        `\nTime: features ${r.seconds.features.toFixed(0)} s, head ${r.seconds.head.toFixed(0)} s, total ${r.seconds.total.toFixed(0)} s`,
      );
      io.out(`Wrote ${r.modelPath} and ${r.cardPath}`);
      if (o.familiarity) await familiarizeCli(io, o.out, o.data, commonOptions().valFraction, o.cache, true);
    });
}

function augmentPreset(v: string): AugmentPreset {
  if (!Object.hasOwn(AUGMENT_PRESETS, v))
    throw new DatasetError(`--augment must be ${Object.keys(AUGMENT_PRESETS).join(' or ')}, got '${v}'.`);
  return v as AugmentPreset;
}

function keepWhich(v: string): 'best' | 'last' {
  if (v !== 'best' && v !== 'last') throw new DatasetError(`--keep must be 'best' or 'last', got '${v}'.`);
  return v;
}

type Num = (v: string, name: string, lo: number, hi: number) => number;
type Common = Omit<Parameters<typeof fineTuneModel>[0], 'tflite'>;

async function fineTune(io: Io, o: Record<string, string | boolean | undefined>, common: Common, num: Num) {
  if (o.trainFromBlock !== undefined && o.trainBlocks !== undefined)
    throw new DatasetError('Give --train-from-block or --train-blocks, not both.');
  let trainFromBlock: number | 'all' = FT.trainFromBlock;
  if (o.trainFromBlock !== undefined)
    trainFromBlock =
      o.trainFromBlock === 'all' ? 'all' : num(String(o.trainFromBlock), 'train-from-block', 0, LAST_BLOCK);
  if (o.trainBlocks !== undefined)
    trainFromBlock = LAST_BLOCK + 1 - num(String(o.trainBlocks), 'train-blocks', 1, LAST_BLOCK + 1);
  const whole = (v: unknown, name: string, lo: number, hi: number) => {
    const x = num(String(v), name, lo, hi);
    if (!Number.isInteger(x)) throw new DatasetError(`--${name} must be a whole number, got '${v}'.`);
    return x;
  };
  const L = FINE_TUNE_LIMITS;
  const settings = {
    trainFromBlock,
    epochs: whole(o.epochs, 'epochs', ...L.epochs),
    batchSize: whole(o.batchSize, 'batch-size', ...L.batchSize),
    accumulate: whole(o.accumulate, 'accumulate', ...L.accumulate),
    lr: num(String(o.lr), 'lr', Number.MIN_VALUE, L.lr[1]),
    headLr: num(String(o.headLr), 'head-lr', Number.MIN_VALUE, L.headLr[1]),
    weightDecay: num(String(o.weightDecay), 'weight-decay', ...L.weightDecay),
    warmupEpochs: num(String(o.warmupEpochs), 'warmup-epochs', ...L.warmupEpochs),
    labelSmoothing: num(String(o.labelSmoothing), 'label-smoothing', ...L.labelSmoothing),
    augment: augmentPreset(String(o.augment)),
    keep: keepWhich(String(o.keep)),
    patience: whole(o.patience, 'patience', ...L.patience),
    workers: whole(o.workers, 'workers', 0, 1) as 0 | 1,
  };
  const tflite = o.tflite ? resolve(String(o.tflite)) : existsSync(SHARED_TFLITE) ? SHARED_TFLITE : null;
  if (!tflite || !existsSync(tflite)) {
    throw new ModelError(
      `--fine-tune needs the MobileNetV2 weights (mobilenet_v2_1.0_224_quant.tflite): ${
        tflite ? `${tflite} does not exist` : `none given and none at ${SHARED_TFLITE}`
      }. Pass --tflite FILE.`,
      'model_not_found',
    );
  }

  // Ctrl-C stops at the next step; the checkpoint of the last whole epoch stays for --resume.
  const stop = new AbortController();
  const onSigint = () => {
    io.err('\nStopping… (the last finished epoch is checkpointed; Ctrl-C again to quit at once)');
    stop.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  let bar: ReturnType<typeof progressBar> | null = null;
  const swapBar = (label: string) => {
    bar?.stop();
    bar = progressBar(label, io);
    return bar;
  };
  let r: FineTuneResult;
  try {
    r = await fineTuneModel({
      ...common,
      ...settings,
      tflite,
      from: o.from ? String(o.from) : undefined,
      resume: Boolean(o.resume),
      signal: stop.signal,
      onStage: (s) => {
        bar?.stop();
        bar = null;
        io.err(`» ${s}`);
      },
      onPrepare: (d, t) => (bar ?? swapBar('Cropping images')).update(d, t),
      onViews: (d, t) => (bar ?? swapBar('Test-time views')).update(d, t),
      onFeatures: (d, t, c) => (bar ?? swapBar('Frozen features')).update(d, t, `(${c} cached)`),
      onStep: (p) => {
        if (p.step === 1) swapBar(`Epoch ${p.epoch}/${p.epochs}`);
        bar!.update(
          p.step,
          p.steps,
          `loss ${p.loss.toFixed(3)} acc ${pct(p.accuracy)} ${p.imagesPerSecond.toFixed(0)} img/s`,
        );
      },
      onEpoch: (e) => {
        bar?.stop();
        bar = null;
        const src = Object.entries(e.val.perSource)
          .map(([s, a]) => `${s} ${pct(a)}`)
          .join(', ');
        const train =
          e.trainLoss === null
            ? 'start (frozen-backbone head)'
            : `train loss ${e.trainLoss.toFixed(3)} acc ${pct(e.trainAccuracy!)}`;
        io.err(
          `  epoch ${e.epoch}: ${train} | val NLL ${e.val.nll.toFixed(4)} (T ${e.val.temperature.toFixed(2)}) ` +
            `acc ${pct(e.val.accuracy)} (${src})` +
            ` | ${e.seconds.toFixed(0)} s${e.best ? '  ★ best' : ''}`,
        );
      },
    });
  } finally {
    (bar as ReturnType<typeof progressBar> | null)?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  const c = r.card;
  const ft = c.head.fineTuning!;
  io.out(
    `\nData: ${r.dataset.items.length} images, ${c.classes.length} classes, ${r.dataset.sources.length} source(s)` +
      (r.failed.length ? `; ${r.failed.length} not used (unreadable or no cell found)` : ''),
  );
  io.out(
    table(
      ['source', ...c.classes],
      r.dataset.sources.map((s) => [s.name, ...c.classes.map((k) => s.counts[k] ?? 0)]),
    ),
  );
  if (r.l2Table.length > 0) {
    io.out('\nStarting head (frozen backbone), l2 chosen on validation (source/class-balanced):');
    io.out(
      table(
        ['l2', 'val NLL', 'balanced acc'],
        r.l2Table.map((t) => [t.l2, t.nll.toFixed(4), pct(t.accuracy)]),
      ),
    );
  }
  const sources = r.dataset.sources.map((s) => s.name);
  io.out(`\nFine-tuning blocks ${ft.fromBlock}–${LAST_BLOCK} and the head (${ft.steps} steps):`);
  io.out(
    table(
      ['epoch', 'train loss', 'train acc', 'val NLL', 'T', 'val acc', 'balanced', ...sources, 'seconds', ''],
      r.history.map((e) => [
        e.epoch,
        e.trainLoss === null ? '–' : e.trainLoss.toFixed(4),
        e.trainAccuracy === null ? '–' : pct(e.trainAccuracy),
        e.val.nll.toFixed(4),
        e.val.temperature.toFixed(2),
        pct(e.val.accuracy),
        pct(e.val.balancedAccuracy),
        ...sources.map((s) => pct(e.val.perSource[s] ?? NaN)),
        e.seconds.toFixed(0),
        e.epoch === r.keptEpoch ? 'kept' : '',
      ]),
    ),
  );
  io.out(
    'val NLL: after temperature scaling (T), source/class-balanced; early stopping keeps the lowest. ' +
      'train: on augmented images.',
  );
  if (r.keptEpoch === 0)
    io.out(
      'No epoch beat the starting point on validation NLL: the model keeps the pretrained backbone weights.',
    );
  printValidation(io, c, r.validation);
  io.out(
    `\nTime: cropping ${r.seconds.prepare.toFixed(0)} s, starting head ${r.seconds.init.toFixed(0)} s, ` +
      `fine-tuning ${r.seconds.train.toFixed(0)} s, total ${r.seconds.total.toFixed(0)} s`,
  );
  io.out(`Wrote ${r.modelPath} and ${r.cardPath}`);
}

function printValidation(io: Io, c: ModelCard, v: Metrics): void {
  io.out(`\nValidation (grouped, unaugmented; temperature ${c.temperature.toFixed(3)}):`);
  io.out(perClassTable(c.classes, v.perClass));
  printScores(io, c.validation, c.reviewThreshold);
  const tta = c.testTimeAugmentation;
  if (tta) {
    io.out(
      `\nThe same images, ${tta.views} views each (flips and turns averaged, as predict --tta runs them; ` +
        `temperature ${tta.temperature.toFixed(3)}):`,
    );
    printScores(io, tta.validation, tta.reviewThreshold);
  }
}

/** The card's summary of one validation: overall scores, the review threshold, then each source. */
function printScores(io: Io, v: ModelCard['validation'], reviewThreshold: number): void {
  io.out(
    `accuracy ${pct(v.accuracy)}  macro-F1 ${pct(v.macroF1)}  ECE ${v.ece.toFixed(3)}  ` +
      `review below ${reviewThreshold.toFixed(2)}`,
  );
  for (const [s, x] of Object.entries(v.perSource)) io.out(`  ${s}: ${pct(x.accuracy)} of ${x.n}`);
}
