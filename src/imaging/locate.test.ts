import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { SHARED, skipNote } from '../testing/shared.js';
import { iou } from '../training/detection-metrics.js';
import { parseVocXml, vocBoxes } from '../training/voc.js';
import { decodeImage } from './decode.js';
import { locateCells, primaryCell } from './locate.js';
import type { Box, RgbImage } from './types.js';

// Stain colours close to BCCD: pink background, red cells, lilac cytoplasm, purple nucleus.
const BACKGROUND = [236, 214, 210];
const RBC = [212, 150, 158];
const CYTOPLASM = [208, 186, 214];
const NUCLEUS_CORE = [100, 62, 178];
const NUCLEUS_RIM = [150, 120, 176];

interface Disc {
  x: number;
  y: number;
  r: number;
}
interface Cell {
  /** Cytoplasm disc: the box a cell should get. */
  body: Disc;
  /** Nucleus lobes, darker at the centre of each (as stained chromatin is). */
  lobes: Disc[];
}

const mix = (a: number[], b: number[], t: number) => a.map((v, i) => Math.round(v + (b[i] - v) * t));

/** Paints a smear: background, red cells, white cells, then black fill where `black` says so. */
function smear(
  width: number,
  height: number,
  scene: { rbcs?: Disc[]; cells?: Cell[]; platelets?: Disc[]; black?: (x: number, y: number) => boolean },
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  const inside = (d: Disc, x: number, y: number) => (x - d.x) ** 2 + (y - d.y) ** 2 <= d.r * d.r;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let c = BACKGROUND;
      for (const d of scene.rbcs ?? []) if (inside(d, x, y)) c = RBC;
      for (const cell of scene.cells ?? []) {
        if (inside(cell.body, x, y)) c = CYTOPLASM;
        for (const l of cell.lobes) {
          const t = Math.hypot(x - l.x, y - l.y) / l.r;
          if (t <= 1) c = mix(NUCLEUS_CORE, NUCLEUS_RIM, t);
        }
      }
      for (const d of scene.platelets ?? []) if (inside(d, x, y)) c = NUCLEUS_CORE;
      if (scene.black?.(x, y)) c = [0, 0, 0];
      // A little deterministic texture, as a camera gives.
      const n = ((x * 73 + y * 151) % 7) - 3;
      data.set(
        [c[0] + n, c[1] + n, c[2] + n].map((v) => Math.max(0, Math.min(255, v))),
        (y * width + x) * 3,
      );
    }
  }
  return { width, height, data };
}

const bodyBox = (d: Disc): Box => ({ x: d.x - d.r, y: d.y - d.r, width: 2 * d.r, height: 2 * d.r, score: 1 });

/** A grid of red cells that keeps clear of the given discs. */
function rbcField(width: number, height: number, avoid: Disc[]): Disc[] {
  const out: Disc[] = [];
  for (let y = 40; y < height; y += 95) {
    for (let x = 40 + ((y / 95) % 2) * 45; x < width; x += 95) {
      const d = { x, y, r: 40 };
      if (avoid.every((a) => Math.hypot(a.x - x, a.y - y) > a.r + 45)) out.push(d);
    }
  }
  return out;
}

// A nucleus of radius 60 in a 640×480 field makes a cell box of ~160 px (the BCCD fit), so bodies are r = 80.
const cellAt = (x: number, y: number): Cell => ({ body: { x, y, r: 80 }, lobes: [{ x, y, r: 60 }] });

/** A 640×480 field of two white cells crowded with red cells. */
function twoCellField() {
  const cells = [cellAt(200, 180), cellAt(480, 330)];
  const img = smear(640, 480, {
    cells,
    rbcs: rbcField(
      640,
      480,
      cells.map((c) => c.body),
    ),
  });
  return { cells, img };
}

describe('locateCells on synthetic smears', () => {
  it('boxes each drawn white cell (IoU > 0.7) among red cells, best first', () => {
    const { cells, img } = twoCellField();
    const boxes = locateCells(img);
    expect(boxes).toHaveLength(2);
    for (const c of cells) {
      const best = Math.max(...boxes.map((b) => iou(b, bodyBox(c.body))));
      expect(best).toBeGreaterThan(0.7);
    }
    for (const b of boxes) {
      expect(b.score).toBeGreaterThan(0);
      expect(b.score).toBeLessThanOrEqual(1);
    }
    expect(boxes[0].score).toBeGreaterThanOrEqual(boxes[1].score);
  });

  it('finds the same cell in a half-size (Kaggle-like 320×240) copy, in that image’s pixels', () => {
    const cell: Cell = { body: { x: 150, y: 110, r: 40 }, lobes: [{ x: 150, y: 110, r: 30 }] };
    const img = smear(320, 240, { cells: [cell] });
    const boxes = locateCells(img);
    expect(boxes).toHaveLength(1);
    expect(iou(boxes[0], bodyBox(cell.body))).toBeGreaterThan(0.7);
  });

  it('gives one box for a nucleus of three separate lobes', () => {
    const body = { x: 320, y: 240, r: 95 };
    const lobes = [
      { x: 270, y: 250, r: 30 },
      { x: 335, y: 205, r: 30 },
      { x: 360, y: 275, r: 30 },
    ];
    const img = smear(640, 480, { cells: [{ body, lobes }], rbcs: rbcField(640, 480, [body]) });
    const boxes = locateCells(img);
    expect(boxes).toHaveLength(1);
    const b = boxes[0];
    for (const l of lobes) {
      expect(l.x - l.r).toBeGreaterThanOrEqual(b.x - 4);
      expect(l.x + l.r).toBeLessThanOrEqual(b.x + b.width + 4);
      expect(l.y - l.r).toBeGreaterThanOrEqual(b.y - 4);
      expect(l.y + l.r).toBeLessThanOrEqual(b.y + b.height + 4);
    }
    expect(iou(b, bodyBox(body))).toBeGreaterThan(0.5);
  });

  it('keeps two cells whose nuclei touch apart', () => {
    // Together wider than one nucleus can be (maxSpan), so the blob is cut where the stain is weakest.
    const cells: Cell[] = [250, 376].map((x) => ({
      body: { x, y: 240, r: 66 },
      lobes: [{ x, y: 240, r: 64 }],
    }));
    const img = smear(640, 480, { cells });
    const boxes = locateCells(img, { mode: 'field' });
    expect(boxes).toHaveLength(2);
    const xs = boxes.map((b) => b.x + b.width / 2).sort((a, b) => a - b);
    expect(Math.abs(xs[0] - 250)).toBeLessThan(15);
    expect(Math.abs(xs[1] - 376)).toBeLessThan(15);
  });

  it('ignores platelets, red cells and black fill', () => {
    const black = (x: number, y: number) => x < 120 + 0.4 * y || y > 430;
    const img = smear(640, 480, {
      rbcs: rbcField(640, 480, []),
      platelets: [
        { x: 300, y: 100, r: 8 },
        { x: 500, y: 300, r: 10 },
      ],
      black,
    });
    expect(locateCells(img)).toEqual([]);
    expect(primaryCell(img)).toBeNull();
  });

  it('finds the cell of a field with black fill, and nothing in the fill', () => {
    const cell = cellAt(420, 220);
    const black = (x: number, y: number) => x < 150 + 0.3 * y;
    const img = smear(640, 480, { cells: [cell], rbcs: rbcField(640, 480, [cell.body]), black });
    const boxes = locateCells(img);
    expect(boxes).toHaveLength(1);
    expect(iou(boxes[0], bodyBox(cell.body))).toBeGreaterThan(0.7);
  });

  it('returns [] for an empty or blank image and rejects a buffer of the wrong size', () => {
    expect(locateCells({ width: 0, height: 0, data: new Uint8Array(0) })).toEqual([]);
    expect(locateCells(smear(640, 480, {}))).toEqual([]);
    expect(() => locateCells({ width: 10, height: 10, data: new Uint8Array(10) })).toThrow(InvalidImageError);
  });

  it('returns only the centred cell of a square crop, every cell in field mode', () => {
    // PBC-like: 360×360, cell centred, a neighbour cut by the right edge.
    const centre: Cell = { body: { x: 180, y: 180, r: 65 }, lobes: [{ x: 180, y: 180, r: 48 }] };
    const edge: Cell = { body: { x: 350, y: 90, r: 60 }, lobes: [{ x: 345, y: 90, r: 45 }] };
    const img = smear(360, 360, { cells: [centre, edge] });
    const crop = locateCells(img);
    expect(crop).toHaveLength(1);
    expect(iou(crop[0], bodyBox(centre.body))).toBeGreaterThan(0.6);
    expect(locateCells(img, { mode: 'field' })).toHaveLength(2);
    expect(primaryCell(img)).toEqual(crop[0]);
  });

  it('primaryCell prefers the cell nearer the centre among equals', () => {
    const cells = [cellAt(130, 130), cellAt(330, 250)];
    const img = smear(640, 480, { cells });
    const p = primaryCell(img);
    expect(p).not.toBeNull();
    expect(iou(p!, bodyBox(cells[1].body))).toBeGreaterThan(0.7);
  });

  // Its speed (target ≤ 10 ms per 640×480 field) is measured by `npm run bench`, not asserted here.
  it('finds both white cells of a 640×480 field crowded with red cells, and nothing else', () => {
    const { cells, img } = twoCellField();
    const found = locateCells(img);
    expect(found).toHaveLength(2);
    for (const c of cells) {
      expect(Math.max(...found.map((b) => iou(b, bodyBox(c.body))))).toBeGreaterThan(0.7);
    }
  });
});

const BCCD = path.join(SHARED, 'data', 'bccd');
const PBC = path.join(SHARED, 'data', 'pbc');
const KAGGLE = path.join(SHARED, 'data', 'kaggle-blood-cells', 'TRAIN');
const haveData = existsSync(BCCD) && existsSync(PBC) && existsSync(KAGGLE);
if (!haveData) skipNote('locateCells on BCCD/PBC/Kaggle images', `${BCCD}, ${PBC} and ${KAGGLE}`);

describe.skipIf(!haveData)('locateCells on real images (../shared)', () => {
  // Train-split BCCD photos (one WBC each, and one with two).
  it.each([
    'BloodImage_00000',
    'BloodImage_00001',
    'BloodImage_00022',
    'BloodImage_00095',
    'BloodImage_00176',
  ])('boxes the WBCs of BCCD %s (IoU ≥ 0.5, nothing else)', async (id) => {
    const img = await decodeImage(path.join(BCCD, 'JPEGImages', `${id}.jpg`));
    const truth = vocBoxes(
      parseVocXml(readFileSync(path.join(BCCD, 'Annotations', `${id}.xml`), 'utf8')),
      'WBC',
    );
    const boxes = locateCells(img);
    expect(boxes).toHaveLength(truth.length);
    for (const t of truth) expect(Math.max(...boxes.map((b) => iou(b, t)))).toBeGreaterThanOrEqual(0.5);
  });

  it('finds exactly one cell, near the centre, in a PBC crop of each class', async () => {
    for (const cls of readdirSync(PBC).sort()) {
      const file = readdirSync(path.join(PBC, cls)).sort()[0];
      const img = await decodeImage(path.join(PBC, cls, file));
      const boxes = locateCells(img);
      expect(boxes, `${cls}/${file}`).toHaveLength(1);
      const b = boxes[0];
      expect(Math.abs(b.x + b.width / 2 - img.width / 2), `${cls}/${file}`).toBeLessThan(img.width * 0.2);
      expect(Math.abs(b.y + b.height / 2 - img.height / 2), `${cls}/${file}`).toBeLessThan(img.height * 0.2);
    }
  });

  it('finds the primary cell of Kaggle fields', async () => {
    for (const cls of readdirSync(KAGGLE).sort()) {
      const file = readdirSync(path.join(KAGGLE, cls)).sort()[0];
      const img = await decodeImage(path.join(KAGGLE, cls, file));
      const p = primaryCell(img);
      expect(p, `${cls}/${file}`).not.toBeNull();
      expect(p!.width * p!.height, `${cls}/${file}`).toBeLessThan(img.width * img.height * 0.5);
    }
  });
});
