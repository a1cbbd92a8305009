import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { skipNote } from '../testing/shared.js';
import { Classifier, DEFAULT_MODEL_PATH, type BatchOutput } from './classifier.js';

const hasModel = existsSync(DEFAULT_MODEL_PATH);
if (!hasModel) skipNote('classifier batching test', DEFAULT_MODEL_PATH);

describe.skipIf(!hasModel)('Classifier.run', () => {
  it('gives each caller its own rows when concurrent calls are coalesced into one run', async () => {
    const c = await Classifier.load();
    const one = 3 * 224 * 224;
    const inputs = [1, 2, 1, 3].map((n, j) =>
      Float32Array.from({ length: n * one }, (_, i) => Math.sin(i * 0.01 + j)),
    );
    const counts = [1, 2, 1, 3];
    const alone: BatchOutput[] = [];
    for (let j = 0; j < inputs.length; j++) alone.push(await c.run(inputs[j], counts[j], j % 2 === 0));
    const together = await Promise.all(inputs.map((x, j) => c.run(x, counts[j], j % 2 === 0)));
    const k = c.classes.length;
    together.forEach((t, j) => {
      expect(t.probabilities).toHaveLength(counts[j] * k);
      t.probabilities.forEach((p, i) => expect(p).toBeCloseTo(alone[j].probabilities[i], 5));
      if (j % 2 === 0) {
        expect(t.cam).toHaveLength(counts[j] * k * 49);
        t.cam!.forEach((v, i) => expect(v).toBeCloseTo(alone[j].cam![i], 4));
      } else expect(t.cam).toBeUndefined();
    });
    await c.close();
  });
});
