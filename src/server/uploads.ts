/**
 * Predict's upload orchestration: stream the files to temp files, header-check them, analyse them in
 * pixel-bounded batches, store each as a case (all or nothing on a server failure).
 */
import { readFile } from 'node:fs/promises';
import type { FastifyRequest } from 'fastify';
import { HematoError, InvalidImageError } from '../errors.js';
import type { PredictItemJson, PredictResponseJson } from '../api/index.js';
import { checkInput } from '../imaging/decode.js';
import { differential } from '../model/differential.js';
import { checkDomain } from '../model/domain.js';
import type { ImagePrediction } from '../model/types.js';
import type { HematoVision } from '../pipeline.js';
import { caseJson } from './case-json.js';
import type { Gate } from './gate.js';
import {
  fileTooLarge,
  isImageProblem,
  isSystemError,
  resourceError,
  type UploadLimits,
} from './http-errors.js';
import type { CaseStore } from './store/index.js';

export interface PredictOptions extends UploadLimits {
  store: CaseStore;
  vision: HematoVision;
  /** Decoded pixels per analyzeBatch call. */
  batchPixels: number;
  tta: boolean;
  /** The stored id of the specimen the images go into. */
  specimenId?: string;
  /** The uploading clinic account's clinic, stamped on each case. */
  clinic?: string | null;
  /** Requests with test-time augmentation are analysed one at a time through this (gate.ts). */
  ttaGate?: Gate;
}

const MAX_BATCH_IMAGES = 16;
/**
 * A request of more images than this, or with test-time augmentation, is bulk: its network rows wait for
 * interactive ones and its decoding runs on the low-priority preparation thread (run-queue.ts,
 * prepare-queue.ts), so a client's single photo is not held up by another's 50-image upload.
 */
export const BULK_IMAGES = 4;
/** Upload bytes of one request held in memory between the header check and analysis. */
const KEEP_UPLOAD_BYTES = 64 * 1024 * 1024;

/** Analyses and stores every image of a predict request; a file the client got wrong is refused alone. */
export async function predictUploads(
  request: FastifyRequest,
  opts: PredictOptions,
): Promise<PredictResponseJson> {
  // A photo or two: bulk work waits from upload to reply (model/bulk-hold.ts); released below if bulk.
  let endInteractive = opts.tta ? undefined : opts.vision.interactive?.();
  try {
    return await predictAll(request, opts, () => {
      endInteractive?.();
      endInteractive = undefined;
    });
  } finally {
    endInteractive?.();
  }
}

async function predictAll(
  request: FastifyRequest,
  opts: PredictOptions,
  isBulk: () => void,
): Promise<PredictResponseJson> {
  const { store, vision, maxFiles, maxFileBytes, batchPixels, tta, specimenId, clinic } = opts;
  const files = await receiveImages(request, store.tmpDir, maxFiles);
  const results: PredictItemJson[] = new Array(files.length);
  const failures: HematoError[] = [];
  const refuse = (i: number, err: HematoError) => {
    failures.push(err);
    results[i] = { file: files[i].name, error: err.code, message: err.message };
  };
  // Header check first (size, format, pixel count): refuses bad files early and sizes the batches.
  // The bytes read for it are kept for analysis up to a budget (one read instead of two per file).
  const sized: { index: number; pixels: number }[] = [];
  const kept = new Map<number, Buffer>();
  let keptBytes = 0;
  for (const [index, f] of files.entries()) {
    try {
      if (f.truncated) throw fileTooLarge(maxFileBytes);
      const bytes = await readFile(f.filepath);
      const head = await checkInput(bytes);
      sized.push({ index, pixels: head.width * head.height });
      if (keptBytes + bytes.length <= KEEP_UPLOAD_BYTES) {
        kept.set(index, bytes);
        keptBytes += bytes.length;
      }
    } catch (err) {
      if (!isImageProblem(err)) throw err;
      refuse(index, err);
    }
  }
  const priority = tta || sized.length > BULK_IMAGES ? 'bulk' : 'interactive';
  if (priority === 'bulk') isBulk();
  const predictions: ImagePrediction[] = [];
  const created: string[] = [];
  const release = tta && opts.ttaGate ? await opts.ttaGate.acquire() : undefined;
  try {
    for (const chunk of pixelChunks(sized, batchPixels, MAX_BATCH_IMAGES)) {
      const inputs = await Promise.all(
        chunk.map(async (c) => kept.get(c.index) ?? readFile(files[c.index].filepath)),
      );
      for (const c of chunk) kept.delete(c.index);
      // Maps as data only: the PNG is drawn on first request (most heat maps are never looked at).
      const items = await vision.analyzeBatch(inputs, { cams: true, tta, priority });
      for (const [j, item] of items.entries()) {
        const { index } = chunk[j];
        if (!item.ok) {
          if (!isImageProblem(item.error)) throw item.error;
          refuse(index, item.error);
          continue;
        }
        const { analysis } = item;
        const stored = await store.add({
          file: files[index].name,
          image: inputs[j],
          imageType: sniffImageType(inputs[j]),
          width: analysis.width,
          height: analysis.height,
          model: {
            name: vision.card.name,
            version: vision.card.version,
            sha256: vision.card.modelSha256,
            tta,
          },
          prediction: analysis,
          heatmapData: analysis.heatmap,
          ...(specimenId !== undefined ? { specimenId } : {}),
          clinic: clinic ?? null,
        });
        created.push(stored.id);
        predictions.push(analysis);
        results[index] = caseJson(stored);
      }
    }
  } catch (err) {
    // All or nothing on a server-side failure: the client never learns these ids.
    for (const id of created) await store.delete(id);
    throw resourceError(err) ?? err;
  } finally {
    release?.();
  }
  if (created.length === 0) {
    if (failures.length === 1) throw failures[0];
    throw new InvalidImageError(
      `None of the ${files.length} images could be analysed: ` +
        results.map((r) => `${r.file}: ${'message' in r ? r.message : ''}`).join('; '),
      'no_valid_images',
      400,
    );
  }
  const domain = predictions.length > 1 ? checkDomain(predictions) : undefined;
  return {
    cases: results,
    differential: differential(vision.card.classes, predictions),
    ...(domain ? { domain } : {}),
  };
}

interface ReceivedFile {
  name: string;
  filepath: string;
  /** Cut at the size limit: refused without being read. */
  truncated: boolean;
}

/** Streams the upload to temp files (removed after the reply) and checks field name and count. */
async function receiveImages(
  request: FastifyRequest,
  tmpdir: string,
  maxFiles: number,
): Promise<ReceivedFile[]> {
  if (!request.isMultipart()) {
    throw new HematoError(
      `Send the images as multipart/form-data in the field "images" (got ${request.headers['content-type'] ?? 'no content type'}).`,
      'unsupported_media_type',
      415,
    );
  }
  let saved;
  // @fastify/multipart logs a stack for every failed save; the refusal gets its one line (hygiene.ts).
  const log = request.log;
  request.log = log.child({}, { level: 'silent' });
  try {
    saved = await request.saveRequestFiles({ tmpdir });
  } catch (err) {
    // Disk full or out of file handles while saving: the server's, for now (503); never the path.
    const exhausted = resourceError(err);
    if (exhausted) throw exhausted;
    // busboy's own parse errors carry no status; they are the client's malformed body.
    if (err instanceof Error && !('statusCode' in err) && !isSystemError(err)) {
      throw new HematoError(
        `The upload is not valid multipart/form-data: ${err.message}.`,
        'invalid_multipart',
        400,
      );
    }
    throw err;
  } finally {
    request.log = log;
  }
  const wrong = saved.files.find((f) => f.fieldname !== 'images');
  if (wrong) {
    throw new HematoError(
      `Unexpected file field "${wrong.fieldname}": send the images in the multipart field "images".`,
      'wrong_field',
      400,
    );
  }
  if (saved.files.length === 0) {
    const textOnly = saved.values && 'images' in saved.values;
    throw new HematoError(
      textOnly
        ? 'The field "images" holds text, not a file: attach the files (curl -F images=@cell.jpg).'
        : `No image received: attach 1 to ${maxFiles} files in the multipart field "images".`,
      'no_images',
      400,
    );
  }
  return saved.files.map((f, i) => ({
    name: cleanFileName(f.filename, i),
    filepath: f.filepath,
    truncated: f.file.truncated,
  }));
}

/** Consecutive runs within the pixel budget (an image over it goes alone), upload order kept. */
export function pixelChunks<T extends { pixels: number }>(
  items: T[],
  budget: number,
  maxItems: number,
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let pixels = 0;
  for (const item of items) {
    if (current.length > 0 && (pixels + item.pixels > budget || current.length >= maxItems)) {
      chunks.push(current);
      current = [];
      pixels = 0;
    }
    current.push(item);
    pixels += item.pixels;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The stored content type comes from the bytes, never from the client's claim. */
export function sniffImageType(b: Buffer): string {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (
    b.length >= 8 &&
    b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  ) {
    return 'image/png';
  }
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
    return 'image/webp';
  }
  const head = b.toString('latin1', 0, 4);
  if (head === 'II*\0' || head === 'MM\0*') return 'image/tiff';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'image/bmp';
  return 'application/octet-stream';
}

function cleanFileName(name: string | undefined, index: number): string {
  const printable = [...(name ?? '')].filter((ch) => ch >= ' ' && ch !== '\u007f').join('');
  const cleaned = printable.trim().slice(0, 255);
  return cleaned || `image-${index + 1}`;
}
