/** Test helpers for the server: a fake HematoVision that behaves like the interface, and multipart bodies. */
import sharp from 'sharp';
import { decodeImage } from '../imaging/decode.js';
import type { CellPrediction, ModelCard } from '../model/types.js';
import { HematoError } from '../errors.js';
import type { AnalyzeOptions, BatchItem, HematoVision, ImageAnalysis } from '../pipeline.js';

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
  return { label, confidence, probabilities, needsReview: confidence < FAKE_CARD.reviewThreshold };
}

/**
 * Decodes with the real decodeImage (so bad input fails exactly as in the real pipeline), then labels by
 * colour: mostly red → neutrophil, green → lymphocyte, blue → monocyte, grey → eosinophil, near black → no
 * white cell (label null). Images 100 px wide or more are "fields" with two cells: the colour's class and a
 * lymphocyte; narrower ones are whole-image predictions with no cells.
 */
export function fakeVision(): HematoVision & { analyzed: number; batches: number[]; closed: boolean } {
  return {
    card: FAKE_CARD,
    analyzed: 0,
    batches: [],
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
      return { ...top, cells, width: img.width, height: img.height, heatmapPng };
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
