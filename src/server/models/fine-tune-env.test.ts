import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fineTuneFromEnv } from './fine-tune-env.js';

describe('fineTuneFromEnv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-ft-env-'));
  const weights = join(dir, 'mobilenet.tflite');
  writeFileSync(weights, 'weights');
  const missing = join(dir, 'missing.tflite');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes BACKBONE_TFLITE, else the shared weights when present, else none', () => {
    expect(fineTuneFromEnv({ BACKBONE_TFLITE: weights }, missing)).toEqual({ tflite: weights });
    expect(fineTuneFromEnv({}, weights)).toEqual({ tflite: weights });
    expect(fineTuneFromEnv({}, missing)).toEqual({ tflite: null });
    expect(() => fineTuneFromEnv({ BACKBONE_TFLITE: missing }, weights)).toThrow(
      `BACKBONE_TFLITE names ${missing}, which does not exist.`,
    );
  });

  it('takes ADAPTATION_FINE_TUNE_MIN_CELLS as a whole number of 2 or more', () => {
    expect(fineTuneFromEnv({ ADAPTATION_FINE_TUNE_MIN_CELLS: '50' }, missing)).toEqual({
      tflite: null,
      minCellsPerClass: 50,
    });
    for (const bad of ['1', '2.5', 'many'])
      expect(() => fineTuneFromEnv({ ADAPTATION_FINE_TUNE_MIN_CELLS: bad }, missing)).toThrow(
        /ADAPTATION_FINE_TUNE_MIN_CELLS must be a whole number/,
      );
  });
});
