/**
 * The bundled model on inputs outside its world: a cat photo, a blank and a fully transparent image, and
 * JPEGs with flipped bits that still decode. Each must be "no white cell" or flagged for review, never a
 * confident unflagged label. Needs the bundled model with its familiarity checks, and ../shared.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { createRng } from '../imaging/random.js';
import { hasPbc, pbcFiles } from '../testing/cells.js';
import { SHARED } from '../testing/shared.js';
import { analyzeImage } from './analyzer.js';
import { Classifier, DEFAULT_MODEL_PATH } from './classifier.js';

const CAT = join(SHARED, 'weights/cat_720p.jpg');
const card = existsSync(DEFAULT_MODEL_PATH.replace(/onnx$/, 'json'))
  ? (JSON.parse(readFileSync(DEFAULT_MODEL_PATH.replace(/onnx$/, 'json'), 'utf8')) as {
      familiarity?: object;
    })
  : null;
const SKIP = !card?.familiarity
  ? 'the bundled model has no familiarity checks'
  : !hasPbc || !existsSync(CAT)
    ? 'needs ../shared (PBC cells and the cat photo)'
    : '';
if (SKIP) console.warn(`[skipped] bundled model on inputs outside its world: ${SKIP}`);

/** Flips `bits` random bits past the JPEG header (the first 600 bytes), seeded. */
function flipBits(bytes: Buffer, bits: number, seed: number): Buffer {
  const out = Buffer.from(bytes);
  const rng = createRng(seed);
  for (let i = 0; i < bits; i++) {
    const at = 600 + Math.floor(rng() * (out.length - 602));
    out[at] ^= 1 << Math.floor(rng() * 8);
  }
  return out;
}

describe.skipIf(!!SKIP)(`bundled model outside its world${SKIP ? ` — skipped: ${SKIP}` : ''}`, () => {
  let classifier: Classifier;
  beforeAll(async () => {
    classifier = await Classifier.load();
  });
  afterAll(async () => classifier?.close());

  const flaggedOrEmpty = (r: { label: string | null; needsReview: boolean }) =>
    r.label === null || r.needsReview;

  it('a cat photo, a blank image and a fully transparent PNG: no white cell, or flagged', async () => {
    const blank = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#ffffff' } })
      .jpeg()
      .toBuffer();
    const clear = await sharp({
      create: { width: 360, height: 360, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    for (const input of [CAT, blank, clear]) {
      const r = await analyzeImage(classifier, input);
      expect(flaggedOrEmpty(r), JSON.stringify({ label: r.label, reasons: r.reviewReasons })).toBe(true);
      expect(r.reviewReasons.length).toBeGreaterThan(0);
    }
  });

  it('flags most bit-flipped JPEGs that still decode', async () => {
    let decoded = 0;
    let flagged = 0;
    for (const [i, file] of pbcFiles('neutrophil', 12, 100).entries()) {
      const damaged = flipBits(readFileSync(file), 8, i + 1);
      try {
        const r = await analyzeImage(classifier, damaged);
        decoded++;
        if (flaggedOrEmpty(r)) flagged++;
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidImageError); // refused with a clear error is fine too
      }
    }
    console.info(`[flags] bit-flipped JPEGs: ${decoded} of 12 decoded, ${flagged} of them flagged`);
    expect(decoded).toBeGreaterThan(0);
    expect(flagged / decoded).toBeGreaterThanOrEqual(0.75);
  });
});
