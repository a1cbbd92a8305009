/**
 * When a server's adaptations fine-tune (training/reviewed-choice.ts), from the environment:
 * BACKBONE_TFLITE, the MobileNetV2 TFLite weights its models were built on (default ../shared/weights beside
 * the repository when present, as `train --fine-tune`; none: adaptations always train a new head), and
 * ADAPTATION_FINE_TUNE_MIN_CELLS, the fewest reviewed cells of every class for fine-tuning (default 200).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { HematoError } from '../../errors.js';
import { SHARED_TFLITE } from '../../training/finetune/starting.js';
import type { FineTuneSettings } from './adaptation.js';

export function fineTuneFromEnv(
  env: Record<string, string | undefined>,
  sharedTflite = SHARED_TFLITE,
): FineTuneSettings {
  const given = env.BACKBONE_TFLITE;
  if (given && !existsSync(given))
    throw new HematoError(`BACKBONE_TFLITE names ${given}, which does not exist.`, 'bad_config');
  const tflite = given ? resolve(given) : existsSync(sharedTflite) ? sharedTflite : null;
  const min = env.ADAPTATION_FINE_TUNE_MIN_CELLS;
  if (min === undefined || min === '') return { tflite };
  const n = Number(min);
  if (!Number.isInteger(n) || n < 2)
    throw new HematoError(
      `ADAPTATION_FINE_TUNE_MIN_CELLS must be a whole number of reviewed cells, 2 or more, not "${min}".`,
      'bad_config',
    );
  return { tflite, minCellsPerClass: n };
}
