import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { RgbImage } from '../imaging/types.js';
import { renderHeatmapPng } from './heatmap.js';

/** A grey 140×140 photo; a cam hot only in its centre cell. */
function photo(): RgbImage {
  return { width: 140, height: 140, data: new Uint8Array(140 * 140 * 3).fill(128) };
}
const centreCam = () => {
  const cam = new Float32Array(49);
  cam[3 * 7 + 3] = 1;
  return cam;
};

async function decode(png: Buffer): Promise<Uint8Array> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return data;
}

describe('renderHeatmapPng', () => {
  it('colours the photo where the map is hot, leaves it alone where the map is zero', async () => {
    const img = photo();
    const before = Uint8Array.from(img.data);
    const png = await renderHeatmapPng(img, [{ cam: centreCam(), x: 0, y: 0, size: 140 }]);
    const px = await decode(png);
    const at = (x: number, y: number) => Array.from(px.subarray((y * 140 + x) * 3, (y * 140 + x) * 3 + 3));
    // The centre is red-hot: the red channel is raised well above the grey, blue pushed down.
    const [r, g, b] = at(70, 70);
    expect(r - 128).toBeGreaterThan(50);
    expect(128 - b).toBeGreaterThan(50);
    expect(g).toBeLessThanOrEqual(128);
    // A corner, where the map is zero, is the photo itself.
    expect(at(2, 2)).toEqual([128, 128, 128]);
    // The caller's image is not modified.
    expect(img.data).toEqual(before);
  });

  it('outlines boxes in white on the overlay', async () => {
    const png = await renderHeatmapPng(photo(), [
      { cam: centreCam(), x: 0, y: 0, size: 140, box: { x: 20, y: 20, width: 100, height: 100, score: 1 } },
    ]);
    const px = await decode(png);
    const i = (20 * 140 + 60) * 3;
    expect(Array.from(px.subarray(i, i + 3))).toEqual([255, 255, 255]);
  });
});
