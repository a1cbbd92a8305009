/** Test helpers for the server: a fake HematoVision that behaves like the interface, and multipart bodies. */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { decodeImage } from '../imaging/decode.js';
import { reviewThresholdFor } from '../model/classifier.js';
import type { CellPrediction, ModelCard } from '../model/types.js';
import { HematoError } from '../errors.js';
import type { AnalyzeOptions, BatchItem, HeatmapData, HematoVision, ImageAnalysis } from '../pipeline.js';

export const FAKE_CLASSES = ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'];

export const FAKE_CARD: ModelCard = {
  name: 'fake-wbc',
  version: '0.0.1-test',
  classes: FAKE_CLASSES,
  createdAt: '2024-01-01T00:00:00.000Z',
  software: { name: 'hematovision', version: '0.1.0' },
  modelFile: 'model.onnx',
  modelSha256: '0'.repeat(64),
  backbone: {
    name: 'none',
    sha256: '0'.repeat(64),
    featureBlocks: [],
    featureDim: 0,
    attribution: 'test double',
  },
  preprocessing: {
    version: 1,
    inputSize: 224,
    crop: 'whole',
    cropPadding: 0,
    resize: 'bilinear',
    normalization: '[-1,1)',
  },
  temperature: 1,
  reviewThreshold: 0.6,
  head: { kind: 'none', l2: 0, optimizer: 'none', iterations: 0, l2Grid: [] },
  training: { counts: {}, augmentedViews: 0, seed: 0, sources: [] },
  validation: { n: 0, accuracy: 0, macroF1: 0, ece: 0, perSource: {} },
  license: 'Apache-2.0',
  intendedUse: 'tests',
};

function prediction(label: string, confidence: number) {
  const rest = (1 - confidence) / (FAKE_CLASSES.length - 1);
  const probabilities = Object.fromEntries(FAKE_CLASSES.map((c) => [c, c === label ? confidence : rest]));
  const low = confidence < FAKE_CARD.reviewThreshold;
  return {
    label,
    confidence,
    probabilities,
    needsReview: low,
    reviewReasons: low ? ['low_confidence' as const] : [],
  };
}

/**
 * Decodes with the real decodeImage (so bad input fails exactly as in the real pipeline), then labels by
 * colour: mostly red → neutrophil, green → lymphocyte, blue → monocyte, grey → eosinophil, near black → no
 * white cell (label null). Images 100 px wide or more are "fields" with two cells: the colour's class and a
 * lymphocyte; narrower ones are whole-image predictions with no cells. With `cams`, labelled images get
 * heat-map data (one 7×7 map per region); `renderHeatmap` draws a small real PNG and counts its calls in
 * `rendered` (the data it was given in `renderedData`).
 */
export function fakeVision(): HematoVision & {
  analyzed: number;
  batches: number[];
  rendered: number;
  renderedData: HeatmapData[];
  closed: boolean;
} {
  return {
    card: FAKE_CARD,
    hasTta: false,
    reviewThreshold(tta?: boolean) {
      return reviewThresholdFor(this.card, tta);
    },
    analyzed: 0,
    batches: [],
    rendered: 0,
    renderedData: [],
    closed: false,
    async analyzeBatch(inputs: (Buffer | string)[], options: AnalyzeOptions = {}): Promise<BatchItem[]> {
      this.batches.push(inputs.length);
      return Promise.all(
        inputs.map(async (input): Promise<BatchItem> => {
          try {
            return { ok: true, analysis: await this.analyze(input, options) };
          } catch (err) {
            if (err instanceof HematoError) return { ok: false, error: err };
            throw err;
          }
        }),
      );
    },
    async analyze(input: Buffer | string, options: AnalyzeOptions = {}): Promise<ImageAnalysis> {
      const img = await decodeImage(input);
      this.analyzed++;
      const sum = [0, 0, 0];
      for (let i = 0; i < img.data.length; i += 3) for (let c = 0; c < 3; c++) sum[c] += img.data[i + c];
      const mean = sum.map((s) => s / (img.width * img.height));
      const heatmapPng = options.heatmap
        ? await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 255, g: 0, b: 0 } } })
            .png()
            .toBuffer()
        : undefined;
      if (Math.max(...mean) < 20) {
        return {
          label: null,
          confidence: 0,
          probabilities: {},
          needsReview: true,
          reviewReasons: ['no_cell'],
          cells: [],
          message: 'No white cell found in this image.',
          width: img.width,
          height: img.height,
        };
      }
      const spread = Math.max(...mean) - Math.min(...mean);
      const label =
        spread < 30
          ? 'eosinophil'
          : ['neutrophil', 'lymphocyte', 'monocyte'][mean.indexOf(Math.max(...mean))];
      const top = prediction(label, spread < 30 ? 0.55 : 0.9);
      const cells: CellPrediction[] =
        img.width >= 100
          ? [
              { ...top, box: { x: 0, y: 0, width: 40, height: 40, score: 0.9 } },
              { ...prediction('lymphocyte', 0.8), box: { x: 50, y: 0, width: 40, height: 40, score: 0.8 } },
            ]
          : [];
      const side = Math.min(img.width, img.height);
      const heatmap: HeatmapData | undefined = options.cams
        ? {
            regions: (cells.length > 0 ? cells : [{ ...top, box: undefined }]).map((c, i) => ({
              x: c.box?.x ?? 0,
              y: c.box?.y ?? 0,
              size: c.box?.width ?? side,
              cam: Array.from({ length: 49 }, (_, k) => ((k + i) % 7) / 6),
              ...(c.box ? { box: c.box } : {}),
              label: c.label,
            })),
          }
        : undefined;
      return { ...top, cells, width: img.width, height: img.height, heatmapPng, heatmap };
    },
    async renderHeatmap(input: Buffer | string, data: HeatmapData): Promise<Buffer> {
      const img = await decodeImage(input);
      this.rendered++;
      this.renderedData.push(data);
      // Real PNG bytes, sized like the image (capped) so a test can tell it was drawn from this image.
      return sharp({
        create: {
          width: Math.min(img.width, 64),
          height: Math.min(img.height, 64),
          channels: 3,
          background: { r: 255, g: 0, b: 0 },
        },
      })
        .png()
        .toBuffer();
    },
    async close() {
      this.closed = true;
    },
  };
}

export function solidJpeg(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .jpeg()
    .toBuffer();
}

export function solidPng(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

/** A JPEG whose scan data is not trivially compressible, so cutting it really truncates pixels. */
export function noisyJpeg(width: number, height: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7919) % 251;
  return sharp(px, { raw: { width, height, channels: 3 } })
    .jpeg()
    .toBuffer();
}

export interface UploadFile {
  field?: string;
  name: string;
  bytes: Buffer;
  type?: string;
}

/** A multipart/form-data body as a browser would send it. */
export async function multipart(
  files: UploadFile[],
  fields: Record<string, string> = {},
): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  for (const f of files) {
    form.append(
      f.field ?? 'images',
      new Blob([new Uint8Array(f.bytes)], { type: f.type ?? 'image/jpeg' }),
      f.name,
    );
  }
  const req = new Request('http://localhost/', { method: 'POST', body: form });
  return {
    payload: Buffer.from(await req.arrayBuffer()),
    headers: { 'content-type': req.headers.get('content-type') ?? '' },
  };
}

/** Minimal RFC 4180 parser, to check what a spreadsheet would read. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

/**
 * A data folder as HematoVision with schema 1 left it (frozen copy of that schema: heat maps rendered at
 * predict time and stored as PNG files), holding one case with a heat map. For migration tests.
 */
export function createVersion1DataDir(
  dataDir: string,
  c: { id: string; image: Buffer; heatmapPng: Buffer; label?: string },
): { imageSha256: string; heatmapSha256: string } {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const imageSha256 = sha(c.image);
  const heatmapSha256 = sha(c.heatmapPng);
  for (const [kind, hash, bytes] of [
    ['images', imageSha256, c.image],
    ['heatmaps', heatmapSha256, c.heatmapPng],
  ] as const) {
    mkdirSync(join(dataDir, kind, hash.slice(0, 2)), { recursive: true });
    writeFileSync(join(dataDir, kind, hash.slice(0, 2), hash), bytes);
  }
  const db = new Database(join(dataDir, 'hematovision.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
      CREATE TABLE cases (
        id TEXT PRIMARY KEY, created_at TEXT NOT NULL, file_name TEXT NOT NULL, image_sha256 TEXT NOT NULL,
        image_type TEXT NOT NULL, image_bytes INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
        heatmap_sha256 TEXT, model_name TEXT NOT NULL, model_version TEXT NOT NULL, label TEXT,
        confidence REAL NOT NULL, needs_review INTEGER NOT NULL CHECK (needs_review IN (0, 1)),
        probabilities TEXT NOT NULL, cells TEXT NOT NULL, message TEXT
      ) STRICT;
      CREATE INDEX cases_created ON cases (created_at DESC, id);
      CREATE INDEX cases_label ON cases (label);
      CREATE INDEX cases_image ON cases (image_sha256);
      CREATE INDEX cases_heatmap ON cases (heatmap_sha256);
      CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        label TEXT NOT NULL, reviewer TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', reviewed_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX reviews_case ON reviews (case_id, id);
    `);
    db.prepare('INSERT INTO schema_migrations VALUES (1, ?, ?)').run(
      'cases and review history',
      '2024-01-01T00:00:00.000Z',
    );
    const label = c.label ?? 'neutrophil';
    db.prepare(
      `INSERT INTO cases VALUES (?, '2024-01-02T00:00:00.000Z', 'old.jpg', ?, 'image/jpeg', ?, 16, 16, ?,
         'fake-wbc', '0.0.0-old', ?, 0.9, 0, ?, '[]', NULL)`,
    ).run(
      c.id,
      imageSha256,
      c.image.length,
      heatmapSha256,
      label,
      JSON.stringify(prediction(label, 0.9).probabilities),
    );
  } finally {
    db.close();
  }
  return { imageSha256, heatmapSha256 };
}
