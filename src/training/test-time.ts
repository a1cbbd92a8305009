/**
 * Calibrates a written model for test-time augmentation (the 8 flips and turns of each crop, logits averaged:
 * what Classifier.run does with `tta`) on the same held-out images as its one-view calibration.
 */
import type { RgbImage } from '../imaging/types.js';
import { OUTPUTS } from '../model/classifier-graph.js';
import { writeInput } from '../model/inputs.js';
import { OnnxSession } from '../model/onnx/runtime.js';
import type { TestTimeAugmentation } from '../model/types.js';
import { DIHEDRAL_VIEWS, expandViews, meanOverViews } from '../model/views.js';
import type { Dataset } from './dataset.js';
import { calibrateHeldOut, type CalibratedHeldOut } from './held-out.js';

export const TEST_TIME_TRANSFORMS =
  'the crop, mirrored, flipped and turned by quarter turns (the 8 symmetries of a square); logits averaged';

/** Images per network run (× 8 views = rows). */
const CHUNK = 2;

export interface TestTimeOptions {
  reviewTargetAccuracy: number;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * `model`: a classifier model (with its `logits` output) whose weights never saw `items`. `crop(i)` gives
 * item i's preprocessed crop, as the analyser would feed it.
 */
export async function calibrateTestTimeViews(
  model: Uint8Array,
  items: readonly number[],
  crop: (item: number) => RgbImage | Promise<RgbImage>,
  ds: Dataset,
  o: TestTimeOptions,
): Promise<{ card: TestTimeAugmentation; score: CalibratedHeldOut }> {
  const k = ds.classes.length;
  const views = DIHEDRAL_VIEWS;
  const session = await OnnxSession.create(model, o.threads ?? 2);
  const logits = new Float32Array(items.length * k);
  try {
    for (let start = 0; start < items.length; start += CHUNK) {
      const chunk = items.slice(start, start + CHUNK);
      const crops = await Promise.all(chunk.map(async (i) => crop(i)));
      const s = crops[0].width;
      const input = new Float32Array(chunk.length * 3 * s * s);
      crops.forEach((c, j) => writeInput(c, input, j));
      const rows = chunk.length * views;
      const out = await session.run(
        { input: { data: expandViews(input, chunk.length, 3, s, views), dims: [rows, 3, s, s] } },
        [OUTPUTS.logits],
      );
      logits.set(meanOverViews(out[OUTPUTS.logits].data, chunk.length, k, views), start * k);
      o.onProgress?.(start + chunk.length, items.length);
    }
  } finally {
    await session.close();
  }
  const score = calibrateHeldOut(logits, items, ds, o.reviewTargetAccuracy);
  return {
    card: {
      views,
      transforms: TEST_TIME_TRANSFORMS,
      temperature: score.temperature,
      reviewThreshold: score.reviewThreshold,
      validation: score.record,
    },
    score,
  };
}
