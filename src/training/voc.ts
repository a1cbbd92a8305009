import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DatasetError } from '../errors.js';
import type { Box } from '../imaging/types.js';

/** One labelled box of a Pascal VOC annotation, in pixel coordinates (x, y = top-left corner). */
export interface VocObject {
  name: string;
  x: number;
  y: number;
  width: number;
  height: number;
  truncated: boolean;
  difficult: boolean;
}

export interface VocAnnotation {
  filename: string;
  width: number;
  height: number;
  objects: VocObject[];
}

export type VocSplit = 'train' | 'val' | 'trainval' | 'test';

/** A VOC image with its boxes, as listed by an ImageSets/Main split file. */
export interface VocSample {
  id: string;
  imagePath: string;
  annotation: VocAnnotation;
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? m[1].trim() : undefined;
}

function num(xml: string, name: string, where: string): number {
  const text = tag(xml, name);
  const value = text === undefined ? NaN : Number(text);
  if (!Number.isFinite(value))
    throw new DatasetError(`VOC annotation ${where}: <${name}> is missing or not a number.`);
  return value;
}

/**
 * Parses one Pascal VOC XML annotation. Corners are taken as given (x = xmin, width = xmax − xmin), the usual
 * reading; VOC's 1-based convention would shift boxes by one pixel, which does not matter at IoU 0.5 and keeps
 * BCCD's xmin = xmax boxes (00338/00343) at zero size. Zero-size boxes are kept; vocBoxes drops them.
 */
export function parseVocXml(xml: string, where = 'XML'): VocAnnotation {
  if (!/<annotation[\s>]/.test(xml)) throw new DatasetError(`${where} is not a Pascal VOC annotation.`);
  const size = tag(xml, 'size') ?? '';
  const objects: VocObject[] = [];
  for (const m of xml.matchAll(/<object>([\s\S]*?)<\/object>/g)) {
    const o = m[1];
    const bnd = tag(o, 'bndbox');
    if (bnd === undefined) throw new DatasetError(`VOC annotation ${where}: an <object> has no <bndbox>.`);
    const xmin = num(bnd, 'xmin', where);
    const ymin = num(bnd, 'ymin', where);
    const xmax = num(bnd, 'xmax', where);
    const ymax = num(bnd, 'ymax', where);
    objects.push({
      name: tag(o, 'name') ?? '',
      x: xmin,
      y: ymin,
      width: Math.max(0, xmax - xmin),
      height: Math.max(0, ymax - ymin),
      truncated: tag(o, 'truncated') === '1',
      difficult: tag(o, 'difficult') === '1',
    });
  }
  return {
    filename: tag(xml, 'filename') ?? '',
    width: size ? num(size, 'width', where) : 0,
    height: size ? num(size, 'height', where) : 0,
    objects,
  };
}

/** Boxes of one class with a positive area, as Box (score 1). */
export function vocBoxes(annotation: VocAnnotation, name: string): Box[] {
  return annotation.objects
    .filter((o) => o.name === name && o.width > 0 && o.height > 0)
    .map((o) => ({ x: o.x, y: o.y, width: o.width, height: o.height, score: 1 }));
}

/**
 * Lists a VOC dataset split (DIR/ImageSets/Main/<split>.txt) with parsed annotations.
 * Throws DatasetError naming what is missing.
 */
export function readVocSplit(dir: string, split: VocSplit): VocSample[] {
  const root = path.resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new DatasetError(`VOC dataset folder not found: ${root}`);
  }
  for (const sub of ['JPEGImages', 'Annotations', path.join('ImageSets', 'Main')]) {
    if (!existsSync(path.join(root, sub))) {
      throw new DatasetError(`${root} is not a Pascal VOC dataset: it has no ${sub}/ folder.`);
    }
  }
  const listFile = path.join(root, 'ImageSets', 'Main', `${split}.txt`);
  if (!existsSync(listFile)) {
    const have = readdirSync(path.join(root, 'ImageSets', 'Main')).filter((f) => f.endsWith('.txt'));
    throw new DatasetError(
      `Split "${split}" not found: ${listFile} is missing (available: ${have.join(', ') || 'none'}).`,
    );
  }
  const ids = readFileSync(listFile, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new DatasetError(`Split file ${listFile} lists no images.`);
  return ids.map((id) => {
    const xmlPath = path.join(root, 'Annotations', `${id}.xml`);
    if (!existsSync(xmlPath)) throw new DatasetError(`Annotation missing for ${id}: ${xmlPath}`);
    const annotation = parseVocXml(readFileSync(xmlPath, 'utf8'), xmlPath);
    const name = annotation.filename || `${id}.jpg`;
    let imagePath = path.join(root, 'JPEGImages', name);
    if (!existsSync(imagePath)) imagePath = path.join(root, 'JPEGImages', `${id}.jpg`);
    if (!existsSync(imagePath)) throw new DatasetError(`Image missing for ${id}: ${imagePath}`);
    return { id, imagePath, annotation };
  });
}
