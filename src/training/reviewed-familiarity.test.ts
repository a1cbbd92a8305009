/**
 * A head retrained on reviewed cells keeps its parent's familiarity checks: on the bundled model (which has
 * them) and the teaching cells, the candidate computes the same distances as the parent and flags an input
 * unlike anything it learned the same way, and its card records the checks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../imaging/decode.js';
import { resizeRgb } from '../imaging/preprocess.js';
import { analyzeImage } from '../model/analyzer.js';
import { Classifier, DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { predictionOf } from '../model/predictions.js';
import { writeInput } from '../model/tensor.js';
import { teachingCells } from '../testing/reviewed.js';
import { learnFromReviewed, type ReviewedResult } from './reviewed.js';

describe('a candidate from reviewed cells keeps the familiarity checks', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'hv-reviewed-fam-'));
  let parent: Classifier;
  let candidate: Classifier;
  let result: ReviewedResult;

  beforeAll(async () => {
    const cells = teachingCells(4).map((c) => ({ image: c.bytes, box: null, label: c.label, group: c.file }));
    result = await learnFromReviewed({
      modelPath: DEFAULT_MODEL_PATH,
      cells,
      outDir,
      minCellsPerClass: 3,
      holdOutFraction: 0.25,
      seed: 1,
    });
    parent = await Classifier.load(DEFAULT_MODEL_PATH);
    candidate = await Classifier.load(result.modelPath);
  }, 120_000);
  afterAll(async () => {
    await parent?.close();
    await candidate?.close();
    rmSync(outDir, { recursive: true, force: true });
  });

  it('records the checks in its card, no longer saying they are dropped', () => {
    const base = parent.card.familiarity!;
    expect(base).toBeDefined();
    expect(candidate.familiar).toBe(true);
    expect(result.card.familiarity).toMatchObject({
      cell: base.cell,
      image: base.image,
      method: base.method,
    });
    // The review budget described the parent's head's confidences, not the candidate's.
    expect(result.card.familiarity?.reviewBudget).toBeUndefined();
    expect(result.card.reviewThreshold).toBe(parent.card.reviewThreshold);
    expect(result.card.reviewedCells?.note).toMatch(/familiarity checks .* are carried over/);
    expect(result.card.reviewedCells?.note).not.toMatch(/familiarity checks and test-time .* not carried/);
  });

  it('flags an input unlike any cell the way the parent does', async () => {
    const size = parent.inputSize;
    const magenta = await sharp({
      create: { width: size, height: size, channels: 3, background: { r: 255, g: 0, b: 255 } },
    })
      .png()
      .toBuffer();
    const input = new Float32Array(3 * size * size);
    writeInput(await resizeRgb(await decodeImage(magenta), size, size), input, 0);
    const [a, b] = [await parent.run(input, 1), await candidate.run(input, 1)];
    expect(b.distances!.cell[0]).toBeCloseTo(a.distances!.cell[0], 3);
    expect(b.distances!.image[0]).toBeCloseTo(a.distances!.image[0], 3);
    const unfamiliar = (card: Classifier['card'], out: typeof a) =>
      predictionOf(card, out, 0).reviewReasons.filter((r) => r.startsWith('unfamiliar'));
    expect(unfamiliar(parent.card, a)).toEqual(['unfamiliar_cell', 'unfamiliar_image']);
    expect(unfamiliar(candidate.card, b)).toEqual(unfamiliar(parent.card, a));
  });

  it('measures real cells as the parent does (the same distances, the same flags)', async () => {
    for (const c of teachingCells(1)) {
      const [a, b] = [await analyzeImage(parent, c.bytes), await analyzeImage(candidate, c.bytes)];
      expect(b.cells.length).toBe(a.cells.length);
      b.cells.forEach((cell, i) => {
        expect(cell.distance).toBeDefined();
        expect(cell.distance).toEqual(a.cells[i].distance);
        const unfamiliar = (r: string[]) => r.filter((x) => x.startsWith('unfamiliar'));
        expect(unfamiliar(cell.reviewReasons)).toEqual(unfamiliar(a.cells[i].reviewReasons));
      });
    }
  });
});
