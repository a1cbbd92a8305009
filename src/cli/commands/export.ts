import { Option, type Command } from 'commander';
import { HematoError } from '../../errors.js';
import { DEFAULT_MODEL_PATH } from '../../model/classifier.js';
import { exportInt8 } from '../../training/int8.js';
import type { Io } from '../io.js';
import { progressBar } from '../progress.js';

const collect = (v: string, prev: string[]) => [...prev, v];

interface ExportCliOptions {
  int8?: boolean;
  model?: string;
  data: string[];
  out: string;
  images: string;
  calibration: 'minmax' | 'percentile' | 'mse';
  percentile: string;
  activations: 'uint8' | 'int8';
  seed: string;
  floatTensors?: string;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export function registerExport(program: Command, io: Io): void {
  program
    .command('export')
    .description(
      'Write a model in another form: --int8 quantizes it (int8 weights and activations, QDQ ONNX) with ' +
        'activation ranges calibrated on images; smaller and faster on CPUs',
    )
    .option('--int8', 'quantize to int8 (the one form there is; required)')
    .option('--model <file>', 'model.onnx or its folder (default: the bundled model)')
    .requiredOption(
      '--data <dir>',
      'a folder of images to calibrate on (labelled or not; use validation images, never a test set); repeatable',
      collect,
      [],
    )
    .requiredOption('--out <dir>', 'folder to write model.int8.onnx and its card model.int8.json to')
    .option('--images <n>', 'calibrate on at most n images, drawn at random from all found', '256')
    .addOption(
      new Option(
        '--calibration <method>',
        'activation ranges: extremes seen, percentiles of all values, or least quantization error',
      )
        .choices(['minmax', 'percentile', 'mse'])
        .default('minmax'),
    )
    .option(
      '--percentile <p>',
      'with --calibration percentile: the share of values inside the range, %',
      '99.999',
    )
    .addOption(
      new Option('--activations <type>', 'integer type of activations (weights are always int8)')
        .choices(['uint8', 'int8'])
        .default('uint8'),
    )
    .option('--seed <n>', 'seed for the choice of images', '42')
    .option(
      '--float-tensors <names>',
      'comma-separated activations to keep float, with the convolutions that read or write them ' +
        '(default: the feature blocks the familiarity checks pool; "" quantizes every one)',
    )
    .action(async (o: ExportCliOptions) => {
      if (!o.int8)
        throw new HematoError('Say which form to export: --int8 (the only one so far).', 'bad_option');
      const images = Number(o.images);
      const percentile = Number(o.percentile);
      if (!Number.isInteger(images) || images < 1)
        throw new HematoError(`--images must be a whole number ≥ 1 (got ${o.images}).`, 'bad_option');
      if (!(percentile > 90 && percentile <= 100))
        throw new HematoError(`--percentile must be in (90, 100] (got ${o.percentile}).`, 'bad_option');
      const bar = progressBar('Calibrating', io);
      const r = await exportInt8({
        model: o.model ?? DEFAULT_MODEL_PATH,
        data: o.data,
        out: o.out,
        images,
        method: o.calibration,
        percentile,
        activations: o.activations,
        seed: Number(o.seed),
        floatTensors: o.floatTensors === undefined ? undefined : o.floatTensors.split(',').filter(Boolean),
        onStage: (s) => io.err(`» ${s}`),
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.stop();
      const q = r.card.quantization!;
      io.out(
        `Wrote ${r.modelPath} (${mb(r.bytes.int8)}, from ${mb(r.bytes.float)}) and ${r.cardPath}: ` +
          `${q.quantized.conv} Conv, ${q.quantized.add} Add quantized (${q.activations}); ` +
          `calibrated on ${r.images.used} images (${q.calibration.method})` +
          (r.images.skipped ? `, ${r.images.skipped} skipped (unreadable or no cell found)` : '') +
          `. Kept in float: ${q.float.join(', ')}.`,
      );
      if (r.images.used < 100 && r.card.familiarity)
        io.err(
          `Only ${r.images.used} calibration images: ranges and familiarity thresholds are rough; ` +
            'a few hundred validation images set them well.',
        );
    });
}
