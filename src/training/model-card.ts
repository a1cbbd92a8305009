/**
 * What every model card says whichever way the model was trained (frozen backbone or fine-tuned): identity,
 * software, license, intended use, preprocessing and the training data.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { PREPROCESSING_VERSION } from '../imaging/preprocess.js';
import type { Preprocessing } from '../model/inputs.js';
import type { ModelCard } from '../model/types.js';
import type { Dataset } from './dataset.js';

export const SOFTWARE_VERSION: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version;

export const MODEL_LICENSE =
  'Apache-2.0 (model weights derived from the Apache-2.0 MobileNetV2 checkpoint; see NOTICE)';
export const INTENDED_USE =
  'Decision support for research and teaching: suggests a white-blood-cell type with a calibrated probability. ' +
  'Not a certified medical device; every result used for patient care must be confirmed by a qualified person.';

/** The preprocessing a trained model records in its card (and serving repeats). */
export function preprocessingFor(crop: 'whole' | 'cell', cropPadding: number): Preprocessing {
  return {
    version: PREPROCESSING_VERSION,
    inputSize: 224,
    crop,
    cropPadding,
    resize: 'sharp bilinear, fit=fill, to 224×224 (the same call in training and serving)',
    normalization: '(pixel − 128) / 128 per RGB channel, NCHW',
  };
}

/** The first fields of every model card: identity, date, software, and the sha256 that binds it to its file. */
export function cardHeader(
  name: string,
  classes: string[],
  onnx: Uint8Array,
): Pick<ModelCard, 'name' | 'version' | 'classes' | 'createdAt' | 'software' | 'modelFile' | 'modelSha256'> {
  const now = new Date().toISOString();
  return {
    name,
    version: now.slice(0, 10).replaceAll('-', '.'),
    classes,
    createdAt: now,
    software: { name: 'hematovision', version: SOFTWARE_VERSION },
    modelFile: 'model.onnx',
    modelSha256: createHash('sha256').update(onnx).digest('hex'),
  };
}

/** The card's `training` section: what the model was trained on. */
export function trainingRecord(
  ds: Dataset,
  o: { seed: number; sourceWeights?: Record<string, number> },
  augmentedViews: number,
): ModelCard['training'] {
  const counts: Record<string, Record<string, number>> = {};
  for (const s of ds.sources) counts[s.name] = s.counts;
  return {
    counts,
    augmentedViews,
    seed: o.seed,
    // Relative to where training ran: a card should not carry one machine's absolute paths.
    sources: ds.sources.map((s) => ({
      name: s.name,
      path: relative(process.cwd(), s.path) || '.',
      weight: o.sourceWeights?.[s.name] ?? 1,
    })),
  };
}
