/** A short fine-tuning run on real PBC cells (blocks ≥ 16), its export, and exact resumption. */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier } from '../model/classifier.js';
import { readMetadata } from '../model/onnx/graph-builder.js';
import { OnnxSession } from '../model/onnx/runtime.js';
import { prepareImage, writeInput } from '../model/inputs.js';
import { buildInferenceGraph } from '../model/net/forward.js';
import { TRAIN_IO } from '../model/training-graph/graphs.js';
import { loadTfliteBackbone, mobileNetV2Spec } from '../model/backbone.js';
import { HEAD_BLOCK, specParams } from '../model/net/spec.js';
import { pipeline } from '../pipeline.js';
import { FOUR_CLASSES, hasPbc, PBC, writeLabelledFolder } from '../testing/cells.js';
import { hasShared, skipNote, TFLITE } from '../testing/shared.js';
import { softmax } from './calibration.js';
import { fineTuneModel, type FineTuneOptions, type FineTuneResult } from './finetune.js';

const ready = hasShared && hasPbc;
if (!ready) skipNote('fine-tuning tests', `${TFLITE} and ${PBC}`);

describe.skipIf(!ready)('fineTuneModel on 8 PBC cells per class, blocks ≥ 16', () => {
  let root: string;
  let images: string[];
  let full: FineTuneResult;
  const steps: { epoch: number; loss: number }[] = [];
  const options = (out: string, extra: Partial<FineTuneOptions> = {}): FineTuneOptions => ({
    data: [join(root, 'data')],
    out: join(root, out),
    tflite: TFLITE,
    classes: FOUR_CLASSES,
    crop: 'cell',
    cropPadding: 0,
    seed: 7,
    valFraction: 0.25,
    reviewTargetAccuracy: 0.9,
    cacheDir: join(root, 'cache'),
    name: 'finetune-test',
    trainFromBlock: 16,
    epochs: 3,
    batchSize: 4,
    lr: 1e-4,
    headLr: 1e-3,
    warmupEpochs: 0.5,
    keep: 'best',
    augment: 'default',
    patience: 10,
    ...extra,
  });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'hv-finetune-'));
    images = await writeLabelledFolder(join(root, 'data'), FOUR_CLASSES, 8);
    full = await fineTuneModel(
      options('full', { onStep: (p) => steps.push({ epoch: p.epoch, loss: p.loss }) }),
    );
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('starts from the frozen head, trains, and its training loss falls', () => {
    const h = full.history;
    expect(h.map((e) => e.epoch)).toEqual([0, 1, 2, 3]);
    expect(h[0].trainLoss).toBeNull();
    // A good start: the frozen head already beats chance on validation (4 classes: NLL ln 4 ≈ 1.39).
    expect(h[0].val.nll).toBeLessThan(1);
    const perEpoch = [1, 2, 3].map((e) => steps.filter((s) => s.epoch === e).at(-1)!.loss);
    expect(perEpoch[2]).toBeLessThan(perEpoch[0]);
    expect(perEpoch.map((l, i) => l === h[i + 1].trainLoss)).toEqual([true, true, true]);
    // 24 training images, batch 4: 6 steps an epoch.
    expect(steps).toHaveLength(18);
    expect(full.card.head.fineTuning).toMatchObject({ fromBlock: 16, epochs: 3, steps: 18, lr: 1e-4 });
    expect(full.history.find((e) => e.epoch === full.bestEpoch)!.best).toBe(true);
  });

  it('exports a classifier whose outputs are the fine-tuned weights', async () => {
    const meta = readMetadata(readFileSync(full.modelPath));
    if (full.bestEpoch > 0) {
      // New weights, new id: feature caches never mix them with the pretrained backbone's.
      expect(meta['hematovision.backbone_id']).toMatch(/-ft[0-9a-f]{16}-/);
      expect(meta['hematovision.backbone_id']).toContain(
        full.card.backbone.fineTuned!.weightsSha256.slice(0, 16),
      );
      expect(full.card.backbone.fineTuned?.fromBlock).toBe(16);
    } else {
      expect(meta['hematovision.backbone_id']).not.toMatch(/-ft/);
      expect(full.card.backbone.fineTuned).toBeUndefined();
    }
    // One view: the exported graph against the training graph's forward pass on the same weights.
    const classifier = await Classifier.load(full.modelPath);
    const files = images.filter((_, i) => i % 4 === 0);
    const input = new Float32Array(files.length * 3 * 224 * 224);
    for (const [j, f] of files.entries()) {
      const p = await prepareImage(f, full.card.preprocessing, { primaryOnly: true });
      writeInput(p.regions[0].pixels, input, j);
    }
    const got = (await classifier.run(input, files.length)).probabilities;
    await classifier.close();
    const reference = await OnnxSession.create(buildInferenceGraph(full.spec));
    const logits = (
      await reference.run({ input: { data: input, dims: [files.length, 3, 224, 224] } }, [TRAIN_IO.logits])
    ).logits.data;
    await reference.close();
    const want = softmax(logits, 4, full.card.temperature);
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);

    // The whole public path runs on it unchanged, with and without the test-time views it is calibrated for.
    const views = full.card.testTimeAugmentation!;
    expect(views.views).toBe(8);
    expect(views.validation.n).toBe(full.card.validation.n);
    expect(views.temperature).toBeGreaterThan(0);
    const hv = await pipeline({ model: full.modelPath });
    expect(hv.hasTta).toBe(true);
    for (const tta of [false, true]) {
      const a = await hv.analyze(files[0], { tta });
      expect(FOUR_CLASSES).toContain(a.label);
    }
    await hv.close();
  });

  it('a run stopped after epoch 1 and resumed ends with the same weights as an uninterrupted one', async () => {
    const stop = new AbortController();
    await expect(
      fineTuneModel(
        options('resumed', { signal: stop.signal, onEpoch: (e) => e.epoch === 1 && stop.abort() }),
      ),
    ).rejects.toMatchObject({ code: 'interrupted' });
    expect(existsSync(join(root, 'resumed', 'checkpoint', 'checkpoint.bin'))).toBe(true);
    expect(existsSync(join(root, 'resumed', 'model.onnx'))).toBe(false);
    // Without --resume an unfinished checkpoint is never overwritten.
    await expect(fineTuneModel(options('resumed'))).rejects.toMatchObject({ code: 'checkpoint_exists' });
    // Other settings cannot continue it.
    await expect(fineTuneModel(options('resumed', { resume: true, lr: 2e-4 }))).rejects.toMatchObject({
      code: 'checkpoint_mismatch',
    });

    const resumed = await fineTuneModel(options('resumed', { resume: true }));
    expect(resumed.resumed).toBe(true);
    expect(resumed.history.map((e) => e.val.nll)).toEqual(full.history.map((e) => e.val.nll));
    expect(resumed.bestEpoch).toBe(full.bestEpoch);
    const a = new Map(specParams(full.spec).map((p) => [p.name, p.data]));
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    for (const p of specParams(resumed.spec))
      expect(bytes(p.data).equals(bytes(a.get(p.name)!)), p.name).toBe(true);
    expect(resumed.card.modelSha256).toBe(full.card.modelSha256);
  });

  it("keep 'last' runs the whole schedule (no early stopping) and ships its end, with the cross-lab preset", async () => {
    const r = await fineTuneModel(
      options('last', { keep: 'last', augment: 'cross-lab', epochs: 2, patience: 1 }),
    );
    expect(r.history.map((e) => e.epoch)).toEqual([0, 1, 2]);
    expect(r.keptEpoch).toBe(2);
    expect(r.card.head.fineTuning).toMatchObject({
      keep: 'last',
      keptEpoch: 2,
      bestEpoch: r.bestEpoch,
      patience: null,
    });
    expect(r.card.head.fineTuning!.augmentation).toContain('resolution');
    expect(r.card.backbone.fineTuned?.fromBlock).toBe(16);
    // The shipped weights are the trained ones, not the best epoch's snapshot nor the pretrained ones.
    const tfl = loadTfliteBackbone(readFileSync(TFLITE));
    const pretrained = new Map(specParams(mobileNetV2Spec(tfl, { classes: 4 })).map((p) => [p.name, p.data]));
    const moved = specParams(r.spec).filter(
      (p) => p.block >= 16 && p.block < HEAD_BLOCK && p.data.some((v, i) => v !== pretrained.get(p.name)![i]),
    );
    expect(moved.length).toBeGreaterThan(0);
    await expect(fineTuneModel(options('bad', { augment: 'heavy' as never }))).rejects.toMatchObject({
      code: 'dataset_error',
    });
  });

  it("--from starts from another model's network, not the ImageNet weights", async () => {
    // A learning rate too small to move float32 weights: what is exported is what the run started from.
    const r = await fineTuneModel(
      options('from', {
        from: full.modelPath,
        lr: 1e-12,
        headLr: 1e-12,
        weightDecay: 0,
        epochs: 1,
        keep: 'last',
        trainFromBlock: 17,
        testTimeViews: false,
      }),
    );
    const started = new Map(specParams(full.spec).map((p) => [p.name, p.data]));
    const pretrained = new Map(
      specParams(mobileNetV2Spec(loadTfliteBackbone(readFileSync(TFLITE)), { classes: 4 })).map((p) => [
        p.name,
        p.data,
      ]),
    );
    let fromFull = 0;
    for (const p of specParams(r.spec).filter((q) => q.block < HEAD_BLOCK)) {
      const want = started.get(p.name)!;
      let worst = 0;
      for (let i = 0; i < p.data.length; i++) worst = Math.max(worst, Math.abs(p.data[i] - want[i]));
      expect(worst, p.name).toBeLessThan(1e-9);
      if (p.data.some((v, i) => v !== pretrained.get(p.name)![i])) fromFull++;
    }
    // full trained blocks 16–17: its weights, not ImageNet's, are where this run began, frozen block 16 included.
    expect(fromFull).toBeGreaterThan(0);
    expect(r.card.head.fineTuning!.startedFrom).toEqual({
      name: 'finetune-test',
      sha256: createHash('sha256').update(readFileSync(full.modelPath)).digest('hex'),
    });
    expect(r.card.backbone.name).toContain("started from finetune-test's weights");
    expect(readMetadata(readFileSync(r.modelPath))['hematovision.backbone_id']).toMatch(/-ft[0-9a-f]{16}-/);
    // A file that is not a model on this backbone fails before any data is read.
    const notModel = join(root, 'not-a-model.onnx');
    writeFileSync(notModel, 'hello');
    await expect(fineTuneModel(options('bad', { from: notModel }))).rejects.toMatchObject({
      code: 'bad_model',
      message: expect.stringContaining(`--from ${notModel}: The model is not an ONNX file`),
    });
    await expect(fineTuneModel(options('bad', { from: join(root, 'missing.onnx') }))).rejects.toMatchObject({
      code: 'model_not_found',
    });
  });

  it('batch 2 with 2 batches accumulated makes the updates of batch 4', async () => {
    const once = { epochs: 1, keep: 'last' as const, testTimeViews: false };
    const [four, twoTwice] = [
      await fineTuneModel(options('batch4', { ...once, batchSize: 4 })),
      await fineTuneModel(options('batch2x2', { ...once, batchSize: 2, accumulate: 2 })),
    ];
    // 24 training images: 6 updates either way, on the same schedule.
    expect(four.card.head.fineTuning).toMatchObject({ steps: 6, batchSize: 4 });
    expect(four.card.head.fineTuning!.accumulate).toBeUndefined();
    expect(twoTwice.card.head.fineTuning).toMatchObject({ steps: 6, batchSize: 2, accumulate: 2 });
    const start = new Map(
      specParams(mobileNetV2Spec(loadTfliteBackbone(readFileSync(TFLITE)), { classes: 4 })).map((p) => [
        p.name,
        p.data,
      ]),
    );
    const b = new Map(specParams(twoTwice.spec).map((p) => [p.name, p.data]));
    // Compare what training changed in the trained blocks (the head starts from a fitted, not a pretrained, one).
    let diff = 0;
    let moved = 0;
    for (const p of specParams(four.spec).filter((q) => q.block >= 16 && q.block < HEAD_BLOCK)) {
      const w0 = start.get(p.name)!;
      const w1 = b.get(p.name)!;
      for (let i = 0; i < p.data.length; i++) {
        diff += (p.data[i] - w1[i]) ** 2;
        moved += (p.data[i] - w0[i]) ** 2;
      }
    }
    expect(moved).toBeGreaterThan(0);
    expect(Math.sqrt(diff / moved)).toBeLessThan(1e-3);
    await expect(fineTuneModel(options('bad', { accumulate: 0 }))).rejects.toMatchObject({
      code: 'dataset_error',
    });
  });
});
