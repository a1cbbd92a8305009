/**
 * Resuming fine-tuning: the fingerprint that identifies a run, and the checkpoint found in the output folder
 * (continued with --resume, refused when unfinished without it).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HematoError } from '../../errors.js';
import type { Dataset } from '../dataset.js';
import { checkSameRun, readCheckpoint, type Checkpoint, type RunConfig } from './checkpoint.js';
import type { FineTuneOptions, Settings } from './settings.js';

/** The checkpoint folder and file of a run writing to `outDir`. */
export function checkpointPaths(outDir: string): { dir: string; file: string } {
  const dir = join(outDir, 'checkpoint');
  return { dir, file: join(dir, 'checkpoint.bin') };
}

/**
 * The checkpoint to continue from: with `resume`, the one in `dir` (which must belong to a run with this
 * `config`); without, none, and an unfinished one there is an error rather than something to overwrite.
 */
export function findCheckpoint(
  paths: { dir: string; file: string },
  config: RunConfig,
  resume: boolean,
): Checkpoint | null {
  const { dir: ckptDir, file: ckptFile } = paths;
  if (existsSync(ckptFile)) {
    const found = readCheckpoint(ckptFile);
    if (resume) {
      checkSameRun(found.header.config, config, ckptDir);
      return found;
    } else if (!found.header.finished) {
      throw new HematoError(
        `${ckptDir} holds an unfinished fine-tuning run (epoch ${found.header.epoch} of ${found.header.config.epochs}). ` +
          'Pass --resume to continue it, or delete that folder (or choose another --out) to start over.',
        'checkpoint_exists',
      );
    }
  } else if (resume) {
    throw new HematoError(`Nothing to resume: no checkpoint in ${ckptDir}.`, 'no_checkpoint');
  }
  return null;
}

/** What identifies a run: a checkpoint resumes only a run with the same fingerprint. */
export function fingerprint(
  o: FineTuneOptions,
  s: Settings,
  ds: Dataset,
  val: number[],
  tfliteSha: string,
  /** sha256 of the `from` model, when the run starts from one. */
  fromSha?: string,
): RunConfig {
  const items = createHash('sha256');
  for (const it of ds.items) items.update(`${it.path}\u0000${it.label}\u0000${it.group}\n`);
  return {
    tfliteSha256: tfliteSha,
    ...(fromSha ? { from: fromSha } : {}),
    data: ds.sources.map((src) => src.path),
    classes: ds.classes,
    items: items.digest('hex').slice(0, 16),
    validationItems: createHash('sha256').update(val.join(',')).digest('hex').slice(0, 16),
    crop: o.crop,
    cropPadding: o.cropPadding,
    seed: o.seed,
    valFraction: o.valFraction,
    sourceWeights: o.sourceWeights ?? {},
    l2Grid: s.l2Grid,
    trainFromBlock: s.trainFromBlock,
    epochs: s.epochs,
    batchSize: s.batchSize,
    // Only when used, so checkpoints from before the option still resume.
    ...(s.accumulate > 1 ? { accumulate: s.accumulate } : {}),
    lr: s.lr,
    headLr: s.headLr,
    weightDecay: s.weightDecay,
    warmupEpochs: s.warmupEpochs,
    labelSmoothing: s.labelSmoothing,
    augment: s.augment,
    keep: s.keep,
    patience: s.keep === 'best' ? s.patience : null,
  };
}

/** The error of a run stopped by its signal: the checkpoint stays for --resume. */
export function interrupted(epoch: number, epochs: number, ckptDir: string): HematoError {
  return new HematoError(
    `Fine-tuning stopped after epoch ${epoch} of ${epochs}. Run the same command with --resume to continue ` +
      `from the checkpoint in ${ckptDir}.`,
    'interrupted',
    500,
  );
}
