import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipNote } from '../testing/shared.js';
import { BULK_NICE, threadStats } from '../thread-priority.js';
import { Classifier, DEFAULT_MODEL_PATH, cardPathFor, type BatchOutput } from './classifier.js';
import { softmaxRows } from './softmax.js';
import type { ModelCard } from './types.js';
import { expandViews } from './views.js';

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
    for (let j = 0; j < inputs.length; j++)
      alone.push(await c.run(inputs[j], counts[j], { cam: j % 2 === 0 }));
    const together = await Promise.all(inputs.map((x, j) => c.run(x, counts[j], { cam: j % 2 === 0 })));
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

  it('takes turns: a single cell queued behind a large call is answered first, and both answers are right', async () => {
    const c = await Classifier.load();
    const one = 3 * 224 * 224;
    const big = Float32Array.from({ length: 48 * one }, (_, i) => Math.sin(i * 0.003));
    const small = Float32Array.from({ length: one }, (_, i) => Math.cos(i * 0.01));
    const bigAlone = await c.run(big, 48);
    const smallAlone = await c.run(small, 1);
    const order: string[] = [];
    const bigRun = c.run(big, 48).then((r) => (order.push('big'), r));
    // Arrives while the big call's first turn runs.
    await new Promise((r) => setImmediate(r));
    const smallRun = c.run(small, 1).then((r) => (order.push('small'), r));
    const [b, sm] = await Promise.all([bigRun, smallRun]);
    expect(order).toEqual(['small', 'big']);
    b.probabilities.forEach((p, i) => expect(p).toBeCloseTo(bigAlone.probabilities[i], 5));
    sm.probabilities.forEach((p, i) => expect(p).toBeCloseTo(smallAlone.probabilities[i], 5));
    expect(b.distances?.cell).toHaveLength(bigAlone.distances?.cell.length ?? 0);
    await c.close();
  });

  it('runs an interactive call before bulk calls queued ahead of it, and bulk answers stay right', async () => {
    const c = await Classifier.load();
    const one = 3 * 224 * 224;
    const big = Float32Array.from({ length: 24 * one }, (_, i) => Math.sin(i * 0.003));
    const few = Float32Array.from({ length: 4 * one }, (_, i) => Math.sin(i * 0.007));
    const small = Float32Array.from({ length: one }, (_, i) => Math.cos(i * 0.01));
    const fewAlone = await c.run(few, 4);
    const order: string[] = [];
    // The big call's first turn starts at once; the other two are queued while it runs.
    const bigRun = c.run(big, 24, { priority: 'bulk' }).then(() => order.push('big'));
    // Four rows would be interactive by size; the caller says bulk (one chunk of a 50-image upload).
    const fewRun = c.run(few, 4, { priority: 'bulk' }).then((r) => (order.push('few'), r));
    const smallRun = c.run(small, 1).then(() => order.push('small'));
    const [, f] = await Promise.all([bigRun, fewRun, smallRun]);
    // Before: the two small calls shared the next run, in arrival order (few, then small).
    expect(order).toEqual(['small', 'few', 'big']);
    f.probabilities.forEach((p, i) => expect(p).toBeCloseTo(fewAlone.probabilities[i], 5));
    await c.close();
  });

  it('holds bulk calls back while interactive work is in flight, yet finishes them (no hang)', async () => {
    const c = await Classifier.load();
    const one = 3 * 224 * 224;
    const big = Float32Array.from({ length: 24 * one }, (_, i) => Math.sin(i * 0.003));
    const alone = await c.run(big, 24, { priority: 'bulk' });
    // Held for good: bulk turns still start, one per maxHoldMs.
    const forever = c.hold.begin();
    const held = await c.run(big, 24, { priority: 'bulk' });
    held.probabilities.forEach((p, i) => expect(p).toBeCloseTo(alone.probabilities[i], 5));
    // Held, then released: the release runs what waits.
    c.hold.bulkStarted();
    const released = c.run(big, 24, { priority: 'bulk' });
    setTimeout(forever, 20);
    expect((await released).probabilities).toHaveLength(alone.probabilities.length);
    await c.close();
  });
});

describe.skipIf(!hasModel || process.platform !== 'linux')('Classifier in a worker thread (Linux)', () => {
  it('runs bulk calls in a second session on low-priority threads, from the first bulk call until idle', async () => {
    const ours = getPriority(0);
    expect(ours).toBeLessThan(BULK_NICE);
    const before = await threadStats();
    const c = await Classifier.load(DEFAULT_MODEL_PATH, { worker: true, bulkIdleMs: 300 });
    try {
      const one = 3 * 224 * 224;
      const big = Float32Array.from({ length: 24 * one }, (_, i) => Math.sin(i * 0.003));
      const lowThreads = async () =>
        [...(await threadStats())].filter(([tid, t]) => !before.has(tid) && t.nice === BULK_NICE);
      // Interactive calls only: no second session yet.
      const interactive = await c.run(big, 24, { priority: 'interactive' });
      expect(await lowThreads()).toEqual([]);
      // A bulk call (beside an interactive one): the same answers, computed on low-priority threads (the
      // session's thread and ONNX Runtime's intra-op thread it started).
      const [bulk, photo] = await Promise.all([
        c.run(big, 24, { priority: 'bulk' }),
        c.run(big.subarray(0, one), 1, { priority: 'interactive' }),
      ]);
      bulk.probabilities.forEach((p, i) => expect(p).toBeCloseTo(interactive.probabilities[i], 5));
      photo.probabilities.forEach((p, i) => expect(p).toBeCloseTo(interactive.probabilities[i], 5));
      const low = await lowThreads();
      expect(low.length).toBeGreaterThanOrEqual(2);
      expect(low.reduce((a, [, t]) => a + t.cpuTicks, 0)).toBeGreaterThan(0);
      expect(getPriority(0)).toBe(ours);
      // Idle: the second session and its threads go; the next bulk call starts it again.
      await expect.poll(async () => (await lowThreads()).length, { timeout: 10_000 }).toBe(0);
      const again = await c.run(big, 24, { priority: 'bulk' });
      again.probabilities.forEach((p, i) => expect(p).toBeCloseTo(interactive.probabilities[i], 5));
      expect((await lowThreads()).length).toBeGreaterThanOrEqual(2);
    } finally {
      await c.close();
    }
  });
});

describe.skipIf(!hasModel)('Classifier with test-time views', () => {
  let dir: string;
  let c: Classifier;
  const one = 3 * 224 * 224;
  // Two drawn "cells" (an oval nucleus and an off-centre lobe on a pink field): no flip or turn maps one
  // onto itself, and the network is not sure of them (a saturated softmax would hide the averaging).
  const image = new Float32Array(2 * one);
  const [bg, nucleus] = [
    [235, 200, 205],
    [110, 40, 150],
  ];
  for (let i = 0; i < 2; i++)
    for (let ch = 0; ch < 3; ch++)
      for (let y = 0; y < 224; y++)
        for (let x = 0; x < 224; x++) {
          const oval = ((x - 100 - 10 * i) / 60) ** 2 + ((y - 120) / 40) ** 2 < 1;
          const lobe = ((x - 150) / 20) ** 2 + ((y - 80 + 30 * i) / 25) ** 2 < 1;
          image[i * one + ch * 224 * 224 + y * 224 + x] = ((oval || lobe ? nucleus : bg)[ch] - 128) / 128;
        }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hv-views-'));
    copyFileSync(DEFAULT_MODEL_PATH, join(dir, 'model.onnx'));
    const card = JSON.parse(readFileSync(cardPathFor(DEFAULT_MODEL_PATH), 'utf8')) as ModelCard;
    // The bundled card's own temperature, so fast and 8-view probabilities are on one scale.
    card.testTimeAugmentation = {
      views: 8,
      transforms: 'test',
      temperature: card.temperature,
      reviewThreshold: 0.77,
      validation: card.validation,
    };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(card));
    c = await Classifier.load(join(dir, 'model.onnx'));
  });
  afterAll(async () => {
    await c?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the 8 views when asked, with the review threshold calibrated for them', async () => {
    expect(c.hasTta).toBe(true);
    const x = image.subarray(0, one);
    expect(await c.run(x, 1, { tta: true })).toMatchObject({ views: 8, reviewThreshold: 0.77 });
    expect(await c.run(x, 1)).toMatchObject({ views: 1, reviewThreshold: c.card.reviewThreshold });
  });

  it('refuses test-time augmentation, clearly, for a model not calibrated for it', async () => {
    const card = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as ModelCard;
    delete card.testTimeAugmentation;
    const plainDir = join(dir, 'plain');
    mkdirSync(plainDir);
    copyFileSync(join(dir, 'model.onnx'), join(plainDir, 'model.onnx'));
    writeFileSync(join(plainDir, 'model.json'), JSON.stringify(card));
    const plain = await Classifier.load(plainDir);
    try {
      expect(plain.hasTta).toBe(false);
      await expect(plain.run(image.subarray(0, one), 1, { tta: true })).rejects.toMatchObject({
        code: 'no_tta',
        status: 400,
      });
    } finally {
      await plain.close();
    }
  });

  it('averages the logits of the flips and turns of each image', async () => {
    const got = (await c.run(image, 2, { tta: true })).probabilities;
    const k = c.classes.length;
    // Fast probabilities of every view, at the same temperature: log p = z / T + a per-row constant.
    const each = (await c.run(expandViews(image, 2, 3, 224, 8), 16)).probabilities;
    const meanLog = new Float32Array(2 * k);
    each.forEach((p, j) => (meanLog[Math.floor(j / (8 * k)) * k + (j % k)] += Math.log(p) / 8));
    const want = softmaxRows(meanLog, k);
    got.forEach((p, i) => expect(p).toBeCloseTo(want[i], 5));
    // …which is not what one view says.
    const single = (await c.run(image, 2)).probabilities;
    expect(Math.max(...got.map((p, i) => Math.abs(p - single[i])))).toBeGreaterThan(1e-4);
  });

  it('says the same of a mirrored or turned image, and its heat map turns with it', async () => {
    const k = c.classes.length;
    const base = await c.run(image.subarray(0, one), 1, { cam: true, tta: true });
    const views = expandViews(image.subarray(0, one), 1, 3, 224, 8);
    for (const t of [1, 2, 5]) {
      const turned = await c.run(views.subarray(t * one, (t + 1) * one), 1, { cam: true, tta: true });
      turned.probabilities.forEach((p, i) => expect(p).toBeCloseTo(base.probabilities[i], 5));
      const camTurned = expandViews(base.cam!, 1, k, 7, 8).subarray(t * k * 49, (t + 1) * k * 49);
      turned.cam!.forEach((v, i) => expect(v).toBeCloseTo(camTurned[i], 3));
    }
  });
});
