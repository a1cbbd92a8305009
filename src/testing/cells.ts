// Test images for the CLI and training tests (not used by product code): real PBC cells from ../shared
// when present, else synthetic "cells" (a purple disc on a pink field) that the locator still finds.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { SHARED } from './shared.js';

export const PBC = join(SHARED, 'data', 'pbc');
export const hasPbc = existsSync(PBC);
export const FOUR_CLASSES = ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'];

/** A 360×360 JPEG: pink background, a purple disc (the "nucleus") whose size and hue vary with `variant`. */
export async function discJpeg(variant: number): Promise<Buffer> {
  const r = 40 + ((variant * 17) % 50);
  const hue = [
    [110, 40, 150],
    [70, 50, 170],
    [140, 60, 160],
    [90, 30, 120],
  ][variant % 4];
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="360" height="360">` +
    `<rect width="360" height="360" fill="rgb(235,200,205)"/>` +
    `<circle cx="${180 + (variant % 3) * 5}" cy="180" r="${r + 30}" fill="rgb(220,190,215)"/>` +
    `<circle cx="${180 + (variant % 3) * 5}" cy="180" r="${r}" fill="rgb(${hue.join(',')})"/></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
}

/** The first `n` images (sorted by name) of a PBC class. */
export function pbcFiles(cls: string, n: number, skip = 0): string[] {
  const dir = join(PBC, cls);
  return readdirSync(dir)
    .filter((f) => /\.jpe?g$/i.test(f))
    .sort()
    .slice(skip, skip + n)
    .map((f) => join(dir, f));
}

/**
 * Writes `<root>/<class>/<image>` with `perClass` images per class: PBC copies when ../shared is present,
 * synthetic discs otherwise. Returns the written image paths.
 */
export async function writeLabelledFolder(
  root: string,
  classes: string[],
  perClass: number,
): Promise<string[]> {
  const out: string[] = [];
  for (const [ci, cls] of classes.entries()) {
    const dir = join(root, cls);
    mkdirSync(dir, { recursive: true });
    if (hasPbc && existsSync(join(PBC, cls))) {
      for (const src of pbcFiles(cls, perClass)) {
        const dest = join(dir, src.slice(src.lastIndexOf('/') + 1));
        copyFileSync(src, dest);
        out.push(dest);
      }
    } else {
      for (let i = 0; i < perClass; i++) {
        const dest = join(dir, `${cls}-${i}.jpg`);
        writeFileSync(dest, await discJpeg(ci * 7 + i));
        out.push(dest);
      }
    }
  }
  return out;
}

/** A JPEG cut short: it starts like a JPEG (so the extension and magic bytes agree) but cannot be decoded. */
export function truncatedJpeg(from: string | Buffer): Buffer {
  const bytes = typeof from === 'string' ? readFileSync(from) : from;
  return bytes.subarray(0, Math.min(600, bytes.length >> 2));
}
