/**
 * Bump whenever the pixels fed to the model change (kernel, normalisation, crop rule); the feature cache
 * keys on it so stale backbone features are never reused.
 */
export const PREPROCESSING_VERSION = 2;

/** The model's input side; MobileNetV2 was trained at 224. */
export const MODEL_INPUT_SIZE = 224;

/**
 * The one resize the network's pixels go through, in training, on the server and in the browser, is
 * `resizeLinear` (resize.ts: sharp's 'linear' kernel in pure TypeScript), so the three compute the same
 * crops by construction. Version 1 resized with sharp itself; its pixels differ from version 2's by one
 * level on a small share of values (the enlarging rounding, resize.ts).
 */
export { resizeLinear } from './resize.js';

// The crop is pure (no sharp): it lives in crop.ts so the browser shares it.
export { cropSquare, type CropBox } from './crop.js';
