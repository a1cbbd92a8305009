import { describe, expect, it } from 'vitest';
import {
  augment,
  CROSS_LAB_AUGMENT_OPTIONS,
  DEFAULT_AUGMENT_OPTIONS,
  describeAugment,
  NO_AUGMENT_OPTIONS,
  type AugmentOptions,
} from './augment.js';
import { createRng, shuffled } from './random.js';
import { gradient, makeImage, maxAbsDiff, pixel } from './testing.js';
import type { RgbImage } from './types.js';

const img = gradient(48, 48);
const wide = gradient(40, 24);

function only(options: Partial<AugmentOptions>): AugmentOptions {
  return { ...NO_AUGMENT_OPTIONS, ...options };
}

function same(a: RgbImage, b: RgbImage): boolean {
  return a.width === b.width && a.height === b.height && maxAbsDiff(a.data, b.data) === 0;
}

function channel(src: RgbImage, c: number): number[] {
  return Array.from(src.data.filter((_, i) => i % 3 === c));
}

/** Exact geometric references. */
function mirror(src: RgbImage): RgbImage {
  return makeImage(src.width, src.height, (x, y) => pixel(src, src.width - 1 - x, y));
}
function turn(src: RgbImage, quarterTurns: number): RgbImage {
  let out = src;
  for (let k = 0; k < quarterTurns; k++) {
    const s = out;
    out = makeImage(s.height, s.width, (x, y) => pixel(s, y, s.height - 1 - x));
  }
  return out;
}

describe('shuffled', () => {
  it('returns a reproducible permutation and leaves its input alone', () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    const a = shuffled(items, createRng(5));
    expect([...a].sort((x, y) => x - y)).toEqual(items);
    expect(a).not.toEqual(items);
    expect(shuffled(items, createRng(5))).toEqual(a);
    expect(shuffled(items, createRng(6))).not.toEqual(a);
    expect(items).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});

describe('createRng', () => {
  it('is reproducible, seed-dependent and in [0, 1)', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });
});

describe('augment', () => {
  it('same seed → identical output; different seeds differ; input untouched', () => {
    const before = Uint8Array.from(img.data);
    const a = augment(img, createRng(7));
    const b = augment(img, createRng(7));
    const c = augment(img, createRng(8));
    expect(same(a, b)).toBe(true);
    expect(same(a, c)).toBe(false);
    expect(Array.from(img.data)).toEqual(Array.from(before));
    expect([a.width, a.height]).toEqual([48, 48]);
  });

  it('returns an identical copy when every step is off', () => {
    for (const src of [img, wide]) {
      const out = augment(src, createRng(1), NO_AUGMENT_OPTIONS);
      expect(out.data).not.toBe(src.data);
      expect(same(out, src)).toBe(true);
    }
  });

  it('keeps the size of non-square images with every step on', () => {
    const out = augment(wide, createRng(3), DEFAULT_AUGMENT_OPTIONS);
    expect([out.width, out.height, out.data.length]).toEqual([40, 24, 40 * 24 * 3]);
  });

  it('flips and quarter turns are exact pixel permutations', () => {
    const seen = new Set<number>();
    for (let seed = 0; seed < 40; seed++) {
      const out = augment(img, createRng(seed), only({ flipHorizontal: true, rotate90: true }));
      const candidates = [0, 1, 2, 3].flatMap((k) => [turn(img, k), turn(mirror(img), k)]);
      const match = candidates.findIndex((c) => same(c, out));
      expect(match, `seed ${seed}`).toBeGreaterThanOrEqual(0);
      seen.add(match);
    }
    expect(seen.size).toBe(8); // all four turns, mirrored and not, occur
    for (let seed = 0; seed < 10; seed++) {
      // non-square: only 0° or 180°, so nothing is cropped
      const out = augment(wide, createRng(seed), only({ rotate90: true }));
      expect(same(out, wide) || same(out, turn(wide, 2))).toBe(true);
    }
  });

  it('small rotation, shift and zoom warp smoothly with edge replication (no black fill)', () => {
    const light = makeImage(64, 64, (x, y) => [150 + (x % 50), 120 + (y % 60), 200]);
    for (let seed = 0; seed < 5; seed++) {
      const out = augment(light, createRng(seed), only({ rotationDegrees: 15, shift: 0.08, zoom: 0.1 }));
      expect(same(out, light)).toBe(false);
      const [minR, minG, blues] = [channel(out, 0), channel(out, 1), channel(out, 2)];
      expect(Math.min(...minR)).toBeGreaterThanOrEqual(150);
      expect(Math.min(...minG)).toBeGreaterThanOrEqual(120);
      expect(new Set(blues)).toEqual(new Set([200]));
    }
  });

  it('colour jitter keeps greys grey under hue and saturation changes', () => {
    const grey = makeImage(16, 16, (x, y) => [x * 8 + y, x * 8 + y, x * 8 + y]);
    const out = augment(grey, createRng(5), only({ hueDegrees: 8, saturation: 0.2 }));
    expect(maxAbsDiff(out.data, grey.data)).toBeLessThanOrEqual(1);
    expect(maxAbsDiff(channel(out, 0), channel(out, 1))).toBeLessThanOrEqual(1);
    expect(maxAbsDiff(channel(out, 0), channel(out, 2))).toBeLessThanOrEqual(1);
  });

  it('brightness scales every pixel by one factor', () => {
    const out = augment(img, createRng(11), only({ brightness: 0.15 }));
    const ratios: number[] = [];
    for (let i = 0; i < img.data.length; i++) if (img.data[i] > 100) ratios.push(out.data[i] / img.data[i]);
    const lo = Math.min(...ratios);
    const hi = Math.max(...ratios);
    expect(hi - lo).toBeLessThan(0.02);
    expect(lo).toBeGreaterThan(0.84);
    expect(hi).toBeLessThan(1.16);
  });

  it('stain jitter stays in range, changes colours mildly and leaves white alone without shift', () => {
    // A smear-like image: white background, pink cells, purple nuclei, a black and a magenta column.
    const smear = makeImage(64, 64, (x, y) => {
      const d = Math.hypot(x - 32, y - 32);
      if (x === 0) return [0, 0, 0];
      if (x === 1) return [255, 0, 255];
      return d < 8 ? [90, 40, 140] : d < 20 ? [230, 150, 170] : [255, 255, 255];
    });
    const diffs: number[] = [];
    for (let seed = 0; seed < 20; seed++) {
      const out = augment(smear, createRng(seed), only({ stainScale: 0.1, stainShift: 0.05 }));
      let sum = 0;
      for (let i = 0; i < out.data.length; i++) sum += Math.abs(out.data[i] - smear.data[i]);
      diffs.push(sum / out.data.length);
      // No NaN/overflow (which a Uint8Array would silently turn into 0 or wrap): extremes stay extremes.
      expect(Math.max(...pixel(out, 0, 9))).toBeLessThan(10);
      const [r, g, b] = pixel(out, 1, 9);
      expect(Math.min(r, b)).toBeGreaterThan(200);
      expect(g).toBeLessThan(10);
      // The nucleus stays purple, the background stays light.
      const [nr, ng, nb] = pixel(out, 32, 32);
      expect(nb > nr && nr > ng).toBe(true);
      expect(Math.min(...pixel(out, 5, 5))).toBeGreaterThan(200);
    }
    expect(Math.min(...diffs)).toBeGreaterThan(0.5);
    expect(Math.max(...diffs)).toBeLessThan(30);

    const scaledOnly = augment(smear, createRng(2), only({ stainScale: 0.1 }));
    expect(pixel(scaledOnly, 5, 5)).toEqual([255, 255, 255]);
    expect(same(scaledOnly, smear)).toBe(false);
  });

  it('default options change the image but keep it recognisable', () => {
    const out = augment(img, createRng(123));
    expect(same(out, img)).toBe(false);
    let sum = 0;
    for (let i = 0; i < out.data.length; i++) sum += out.data[i];
    let sumIn = 0;
    for (let i = 0; i < img.data.length; i++) sumIn += img.data[i];
    expect(Math.abs(sum - sumIn) / sumIn).toBeLessThan(0.35);
  });

  it('resolution loss keeps flat areas and the mean, softens edges, and leaves the other draws alone', () => {
    // Left half black, right half white: a sharp edge at x = 32.
    const edge = makeImage(64, 64, (x) => (x < 32 ? [0, 0, 0] : [255, 255, 255]));
    const soft = augment(edge, createRng(4), only({ resolution: 0.75 }));
    expect(pixel(soft, 2, 10)).toEqual([0, 0, 0]);
    expect(pixel(soft, 61, 10)).toEqual([255, 255, 255]);
    // The step now takes several pixels: some values strictly between black and white.
    const row = Array.from({ length: 64 }, (_, x) => pixel(soft, x, 10)[0]);
    expect(row.filter((v) => v > 0 && v < 255).length).toBeGreaterThanOrEqual(2);
    let sum = 0;
    let sumIn = 0;
    for (let i = 0; i < edge.data.length; i++) {
      sum += soft.data[i];
      sumIn += edge.data[i];
    }
    expect(Math.abs(sum - sumIn) / sumIn).toBeLessThan(0.02);
    // Drawn last: adding it does not change the geometry and colour drawn for the same seed.
    for (const seed of [1, 2, 3]) {
      const base = augment(img, createRng(seed), DEFAULT_AUGMENT_OPTIONS);
      const withOff = augment(img, createRng(seed), { ...DEFAULT_AUGMENT_OPTIONS, resolution: 0 });
      expect(same(base, withOff)).toBe(true);
    }
  });

  it('the cross-lab preset changes colours more than the default does', () => {
    const smear = makeImage(64, 64, (x, y) => {
      const d = Math.hypot(x - 32, y - 32);
      return d < 8 ? [90, 40, 140] : d < 20 ? [230, 150, 170] : [240, 235, 240];
    });
    // Colour steps only, so the centre pixel stays on the nucleus.
    const colourOnly = (o: AugmentOptions) =>
      only({
        brightness: o.brightness,
        contrast: o.contrast,
        saturation: o.saturation,
        hueDegrees: o.hueDegrees,
        stainScale: o.stainScale,
        stainShift: o.stainShift,
      });
    const meanColourShift = (o: AugmentOptions) => {
      let total = 0;
      for (let seed = 0; seed < 30; seed++) {
        const [r, , b] = pixel(augment(smear, createRng(seed), colourOnly(o)), 32, 32);
        total += Math.abs(r - 90) + Math.abs(b - 140);
      }
      return total / 30;
    };
    expect(meanColourShift(CROSS_LAB_AUGMENT_OPTIONS)).toBeGreaterThan(
      1.5 * meanColourShift(DEFAULT_AUGMENT_OPTIONS),
    );
  });

  it('describes a preset from its values', () => {
    expect(describeAugment(NO_AUGMENT_OPTIONS)).toBe('none');
    const d = describeAugment(CROSS_LAB_AUGMENT_OPTIONS);
    expect(d).toContain('±15° rotation');
    expect(d).toContain('hue ±20°');
    expect(d).toContain('HED stain ×(1 ± 0.6) ± 0.15 OD');
    expect(d).toContain('resolution down to 40 % of the side');
    expect(describeAugment(DEFAULT_AUGMENT_OPTIONS)).not.toContain('resolution');
  });
});
