/** Checks files in the browser before they are sent: a slow clinic link should not carry a file the server refuses. */
import type { CaseError } from './api.js';

/** The server's per-file limit (src/server: maxFileBytes default). */
export const MAX_FILE_BYTES = 20 * 1024 * 1024;
const IMAGE_NAME = /\.(jpe?g|png|tiff?|webp|bmp)$/i;

/** Files to upload, and those refused here with the reason the server would give. */
export function screenUploads<F extends { name: string; size: number; type: string }>(
  files: F[],
): { ok: F[]; refused: CaseError[] } {
  const ok: F[] = [];
  const refused: CaseError[] = [];
  for (const f of files) {
    if (f.size > MAX_FILE_BYTES)
      refused.push({
        file: f.name,
        error: 'file_too_large',
        message: `${(f.size / (1024 * 1024)).toFixed(1)} MB: each image must be at most 20 MB. It was not sent.`,
      });
    else if (!(f.type.startsWith('image/') || (f.type === '' && IMAGE_NAME.test(f.name))))
      refused.push({
        file: f.name,
        error: 'unsupported_format',
        message: 'Not an image (JPEG, PNG, TIFF, WebP or BMP). It was not sent.',
      });
    else ok.push(f);
  }
  return { ok, refused };
}
