/**
 * Analysis on this device: the server's pipeline run in the page, with the same TypeScript wherever it is
 * pure (locate, crop, input tensor, predictions and review reasons). Decoding is the browser's
 * (createImageBitmap), resizing is resizeLinear (sharp's kernel in TypeScript). Nothing is uploaded.
 */
import { InvalidImageError } from '../../errors.js';
import { cropSquare } from '../../imaging/crop.js';
import { locateCells } from '../../imaging/locate.js';
import { damageOf } from '../../imaging/quality.js';
import { resizeLinear } from '../../imaging/resize.js';
import type { RgbImage } from '../../imaging/types.js';
import { OUTPUTS as OUT } from '../../model/outputs.js';
import { imagePrediction, predictionOf } from '../../model/predictions.js';
import { writeInput } from '../../model/tensor.js';
import type { CellPrediction, ImagePrediction, ModelCard, Prediction } from '../../model/types.js';
import { createSession, type WebSession } from './ort-web.js';

/** The int8 model the server offers for devices (small: one download, then cached). */
export const LOCAL_MODEL_URL = './models/model.int8.onnx';
export const LOCAL_CARD_URL = './models/model.int8.json';

export interface LocalModel {
  card: ModelCard;
  session: WebSession;
  /** Whether the model computes familiarity distances and the card holds their thresholds. */
  familiar: boolean;
}

/** What the device says of one image: the server's ImagePrediction plus the image size. */
export interface LocalAnalysis extends ImagePrediction {
  width: number;
  height: number;
}

async function sha256Hex(bytes: Uint8Array): Promise<string | null> {
  // SubtleCrypto exists only in secure contexts (https, localhost): elsewhere the check is skipped.
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function fetchOk(url: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch {
    throw new Error(`The model could not be downloaded (${url}): the server cannot be reached.`);
  }
  if (!res.ok) throw new Error(`The model could not be downloaded (${url}: HTTP ${res.status}).`);
  return res;
}

/** Downloads (or reads from the offline cache) the model and its card, checks the file, starts the runtime. */
export async function loadLocalModel(
  modelUrl = LOCAL_MODEL_URL,
  cardUrl = LOCAL_CARD_URL,
): Promise<LocalModel> {
  const [card, bytes] = await Promise.all([
    fetchOk(cardUrl).then((r) => r.json() as Promise<ModelCard>),
    fetchOk(modelUrl).then(async (r) => new Uint8Array(await r.arrayBuffer())),
  ]);
  const sha = await sha256Hex(bytes);
  if (sha !== null && sha !== card.modelSha256) {
    throw new Error('The downloaded model does not match its card (sha256): refusing to run it.');
  }
  const session = await createSession(bytes);
  const familiar =
    card.familiarity !== undefined &&
    session.outputNames.includes(OUT.cellDistance) &&
    session.outputNames.includes(OUT.imageDistance);
  return { card, session, familiar };
}

/**
 * Decodes a file to 8-bit RGB as shown (EXIF orientation applied), without colour management, as the
 * server's decoder does for files without an ICC profile. Also the share of nearly transparent pixels.
 */
export async function decodeFile(file: Blob): Promise<RgbImage & { transparentFraction: number }> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      imageOrientation: 'from-image',
    });
  } catch {
    throw new InvalidImageError(
      'The file is not an image this browser can decode (JPEG, PNG, BMP or WebP), or it is corrupt.',
      'corrupt_image',
    );
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('This browser cannot read image pixels (no 2D canvas).');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  let clear = 0;
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) {
    data[o] = rgba[i];
    data[o + 1] = rgba[i + 1];
    data[o + 2] = rgba[i + 2];
    if (rgba[i + 3] < 16) clear++;
  }
  return { width, height, data, transparentFraction: width * height ? clear / (width * height) : 0 };
}

/**
 * Network-sized RGB crops → one network run → a prediction per crop (the server's predictionOf on the same
 * numbers). Also what the parity test feeds the server's own crops to, to compare the runtimes alone.
 */
export async function classifyCrops(model: LocalModel, crops: RgbImage[]): Promise<Prediction[]> {
  const { card, session } = model;
  const size = card.preprocessing.inputSize;
  if (crops.length === 0) return [];
  for (const c of crops) {
    if (c.width !== size || c.height !== size)
      throw new RangeError(`classifyCrops: a ${c.width}x${c.height} crop; the model takes ${size}x${size}`);
  }
  const n = crops.length;
  const input = new Float32Array(n * 3 * size * size);
  crops.forEach((c, slot) => writeInput(c, input, slot));
  const names = [OUT.probabilities, ...(model.familiar ? [OUT.cellDistance, OUT.imageDistance] : [])];
  const res = await session.run(input, [n, 3, size, size], names);
  const out = {
    probabilities: res[OUT.probabilities],
    reviewThreshold: card.reviewThreshold,
    distances: model.familiar ? { cell: res[OUT.cellDistance], image: res[OUT.imageDistance] } : undefined,
  };
  return crops.map((_, i) => predictionOf(card, out, i));
}

/** Decoded pixels → located cells → one network run → predictions, as the server's analyzeImage. */
export async function analysePixels(
  model: LocalModel,
  image: RgbImage & { transparentFraction: number },
): Promise<LocalAnalysis> {
  const prep = model.card.preprocessing;
  const size = prep.inputSize;
  const damage = damageOf({ ...image, warnings: [] });
  const regions =
    prep.crop === 'whole'
      ? [{ box: null, pixels: resizeLinear(image, size, size) }]
      : locateCells(image).map((box) => ({
          box,
          pixels: resizeLinear(cropSquare(image, box, prep.cropPadding), size, size),
        }));
  const predictions = await classifyCrops(
    model,
    regions.map((r) => r.pixels),
  );
  const cells: CellPrediction[] = [];
  regions.forEach((r, i) => {
    if (r.box) cells.push({ ...predictions[i], box: r.box });
  });
  const primary = predictions[0] ?? null;
  return { width: image.width, height: image.height, ...imagePrediction(primary, cells, damage) };
}

/** A file to its analysis, on this device. */
export async function analyseFile(model: LocalModel, file: Blob): Promise<LocalAnalysis> {
  return analysePixels(model, await decodeFile(file));
}
