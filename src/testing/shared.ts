import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
/** ../shared beside the repository: data and weights for development and CI, never committed. */
export const SHARED = resolve(REPO_ROOT, '../shared');
export const TFLITE = resolve(SHARED, 'weights/mobilenet_v2_1.0_224_quant.tflite');
export const hasShared = existsSync(TFLITE);

/** Logs why a suite is skipped, so a skipped run says so plainly. */
export function skipNote(what: string, needs: string): void {
  console.warn(`[skipped] ${what}: needs ${needs}`);
}
