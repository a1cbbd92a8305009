/**
 * The fine-tune path of learning from reviewed cells, end to end on a short run (blocks ≥ 16, one epoch) from
 * the bundled model on 7 teaching cells a class, with a large calibration part (enough cells to fit familiarity
 * checks of its own, at low ranks to be quick): a candidate model file and card, held-back scores beside the
 * active model, the active model untouched.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardPathFor, DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { readFloatInitializers } from '../model/onnx/graph-builder.js';
import { pipeline } from '../pipeline.js';
import { teachingCells } from '../testing/reviewed.js';
import { hasShared, skipNote, TFLITE } from '../testing/shared.js';
import { parentFamiliarity } from './reviewed-familiarity.js';
import { fineTuneFromReviewed, type ReviewedFineTuneResult } from './reviewed-finetune.js';
import type { ReviewedCell } from './reviewed.js';

if (!hasShared) skipNote('reviewed-cells fine-tuning test', TFLITE);

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(!hasShared)('fineTuneFromReviewed on 5 reviewed cells a class', () => {
  let root: string;
  let active: string;
  let before: { model: string; card: string };
  let r: ReviewedFineTuneResult;
  const stages: { fraction: number; stage: string }[] = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'hv-reviewed-ft-'));
    active = join(root, 'active', 'model.onnx');
    mkdirSync(join(root, 'active'));
    copyFileSync(DEFAULT_MODEL_PATH, active);
    copyFileSync(cardPathFor(DEFAULT_MODEL_PATH), cardPathFor(active));
    before = { model: sha256(active), card: sha256(cardPathFor(active)) };
    // Each teaching image holds one cell: its box is where the active model found it, as a reviewer confirms it.
    const hv = await pipeline({ model: active });
    const cells: ReviewedCell[] = [];
    try {
      for (const c of teachingCells(7)) {
        const found = await hv.analyze(c.bytes);
        cells.push({
          image: c.bytes,
          box: found.cells[0].box,
          label: c.label,
          group: createHash('sha256').update(c.bytes).digest('hex'),
        });
      }
    } finally {
      await hv.close();
    }
    r = await fineTuneFromReviewed({
      modelPath: active,
      cells,
      outDir: join(root, 'out'),
      minCellsPerClass: 7,
      calibrationFraction: 0.6,
      familiarity: { cellRank: 8, imageRank: 8, neighbours: false },
      holdOutFraction: 0.3,
      seed: 1,
      tflite: TFLITE,
      trainFromBlock: 16,
      epochs: 1,
      batchSize: 8,
      lr: 1e-4,
      headLr: 1e-3,
      workers: 0,
      onProgress: (fraction, stage) => stages.push({ fraction, stage }),
    });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('splits whole images into training, calibration and held-back, every class on each side', () => {
    const classes = Object.keys(r.counts.heldOut);
    expect(classes).toHaveLength(8);
    for (const c of classes) {
      // 7 images a class: 2 held back (0.3), 3 of the other 5 calibrate (0.6), 2 train.
      expect([r.counts.trained[c], r.counts.calibration[c], r.counts.heldOut[c]]).toEqual([2, 3, 2]);
    }
    expect(r.counts.final).toEqual(r.counts.trained);
    expect(r.recipe).toMatchObject({ kind: 'fine-tune', epochs: 1, trainFromBlock: 16, lr: 1e-4, steps: 2 });
  });

  it("writes a model card that says it was fine-tuned from the active model on the reviewed lab's cells", () => {
    const card = JSON.parse(readFileSync(cardPathFor(r.modelPath), 'utf8'));
    expect(card).toEqual(JSON.parse(JSON.stringify(r.card)));
    expect(card.modelSha256).toBe(sha256(r.modelPath));
    expect(card.reviewedCells).toMatchObject({
      recipe: 'fine-tune',
      from: { name: 'hematovision-wbc8', modelSha256: before.model },
      trained: r.counts.trained,
      heldOut: r.counts.heldOut,
      calibrationCells: r.counts.calibration,
    });
    expect(card.reviewedCells.note).toContain('Fine-tuned from hematovision-wbc8');
    expect(card.reviewedCells.note).toContain('on 16 reviewed cells of 8 classes from the reviewed lab');
    expect(card.reviewedCells.note).toContain('its own (unfamiliar_cell, unfamiliar_image) were fitted');
    expect(card.head.fineTuning).toMatchObject({ fromBlock: 16, startedFrom: { sha256: before.model } });
    // Familiarity checks of its own, on the reviewed lab alone, in the model file as in the card.
    expect(card.familiarity.image.components).toEqual(['reviewed lab']);
    expect(card.familiarity.cell.components).toEqual(Object.keys(r.counts.heldOut));
    expect(card.familiarity.reviewBudget.before).toBeGreaterThanOrEqual(card.reviewThreshold);
    expect(parentFamiliarity(readFileSync(r.modelPath), card)).not.toBeNull();
    expect(card.preprocessing).toEqual(JSON.parse(readFileSync(cardPathFor(active), 'utf8')).preprocessing);
    expect(card.validation).toMatchObject({ n: 16, accuracy: r.comparison.candidate.accuracy });
    // Nothing of the run is left beside the model.
    expect(existsSync(join(root, 'out', 'checkpoint'))).toBe(false);
    expect(existsSync(join(root, 'out', 'fine-tune'))).toBe(false);
  });

  it("changes the trained blocks' weights, keeps the frozen ones the active model's, and leaves the active model as it was", () => {
    const a = readFloatInitializers(readFileSync(active));
    const c = readFloatInitializers(readFileSync(r.modelPath));
    const differs = (name: string) => a.get(name)!.some((v, i) => v !== c.get(name)![i]);
    expect(differs('Conv_1/W')).toBe(true); // block 17, trained
    expect(differs('expanded_conv_3/expand/W')).toBe(false); // frozen: the active model's, not ImageNet's
    expect(differs('head/W')).toBe(true);
    expect({ model: sha256(active), card: sha256(cardPathFor(active)) }).toEqual(before);
  });

  it('scores the candidate and the active model on the same held-back cells, with progress on the way', async () => {
    expect(r.comparison.heldOut).toBe(16);
    for (const s of [r.comparison.active, r.comparison.candidate]) {
      expect(s.accuracy).toBeGreaterThanOrEqual(0);
      expect(s.accuracy).toBeLessThanOrEqual(1);
      expect(Object.values(s.perClass).reduce((n, p) => n + p.support, 0)).toBe(16);
    }
    // The bundled model knows these PBC cells well.
    expect(r.comparison.active.accuracy).toBeGreaterThan(0.8);
    expect(stages.some((s) => s.stage.startsWith('Fine-tuning: epoch 1 of 1'))).toBe(true);
    const fractions = stages.map((s) => s.fraction);
    expect(fractions).toEqual([...fractions].sort((x, y) => x - y));
    expect(fractions.at(-1)).toBe(1);
    // The stored candidate serves as it is.
    const hv = await pipeline({ model: r.modelPath });
    try {
      const out = await hv.analyze(teachingCells(1)[0].bytes);
      expect(Object.keys(r.counts.heldOut)).toContain(out.label);
    } finally {
      await hv.close();
    }
  });
});
