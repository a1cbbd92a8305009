import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { ModelError } from '../../errors.js';
import { buildBackboneModel } from '../../model/backbone.js';
import type { Io } from '../io.js';

export function registerImportBackbone(program: Command, io: Io): void {
  program
    .command('import-backbone')
    .description('Convert the ImageNet MobileNetV2 TFLite file into a float32 ONNX backbone')
    .requiredOption('--tflite <file>', 'mobilenet_v2_1.0_224_quant.tflite')
    .option('--out <file>', 'where to write the ONNX backbone', '.cache/backbone.onnx')
    .option('--imagenet-head', 'also output the 1001 ImageNet class probabilities', false)
    .option('--no-verify', 'accept a TFLite file whose sha256 differs from the expected one')
    .action((o: { tflite: string; out: string; imagenetHead: boolean; verify: boolean }) => {
      let bytes: Buffer;
      try {
        bytes = readFileSync(o.tflite);
      } catch {
        throw new ModelError(`Cannot read ${o.tflite}.`, 'model_not_found');
      }
      const onnx = buildBackboneModel(bytes, { includeImagenetHead: o.imagenetHead, verifySha256: o.verify });
      const out = resolve(o.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, onnx);
      io.out(`Wrote ${out} (${(onnx.length / 1e6).toFixed(1)} MB).`);
    });
}
