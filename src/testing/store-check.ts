// What a SQLite data folder holds, checked from outside the server: every case row has its complete image
// (and heat map) on disk, and no upload is left half-written in tmp/. For the reliability suite.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export interface StoreCheck {
  /** Case ids in the database. */
  ids: Set<string>;
  /** Cases whose image file is missing, of another size, or not the bytes its hash names. */
  brokenImages: string[];
  /** Cases whose stored heat-map PNG is missing. */
  brokenHeatmaps: string[];
  /** Files left in tmp/ (uploads or blobs written half-way). */
  tmpFiles: string[];
  /** Reviews per case id: `label|reviewer|note` in order. */
  reviews: Map<string, string[]>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads the database read-only (a running server's WAL is seen) and checks every file it points at. */
export function checkStore(dataDir: string, options: { ignoreTmp?: RegExp } = {}): StoreCheck {
  const db = new Database(join(dataDir, 'hematovision.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare('SELECT id, image_sha256 AS image, image_bytes AS bytes, heatmap_sha256 AS heatmap FROM cases')
      .all() as { id: string; image: string; bytes: number; heatmap: string | null }[];
    const brokenImages: string[] = [];
    const brokenHeatmaps: string[] = [];
    for (const r of rows) {
      const path = join(dataDir, 'images', r.image.slice(0, 2), r.image);
      const bytes = existsSync(path) ? readFileSync(path) : null;
      if (!bytes || bytes.length !== r.bytes || sha256(bytes) !== r.image) brokenImages.push(r.id);
      if (r.heatmap && !existsSync(join(dataDir, 'heatmaps', r.heatmap.slice(0, 2), r.heatmap)))
        brokenHeatmaps.push(r.id);
    }
    const reviews = new Map<string, string[]>();
    for (const r of db.prepare('SELECT case_id, label, reviewer, note FROM reviews ORDER BY id').all() as {
      case_id: string;
      label: string;
      reviewer: string;
      note: string;
    }[]) {
      const list = reviews.get(r.case_id) ?? [];
      list.push(`${r.label}|${r.reviewer}|${r.note}`);
      reviews.set(r.case_id, list);
    }
    const tmp = join(dataDir, 'tmp');
    const tmpFiles = existsSync(tmp)
      ? readdirSync(tmp).filter((f) => !(options.ignoreTmp?.test(f) ?? false))
      : [];
    return { ids: new Set(rows.map((r) => r.id)), brokenImages, brokenHeatmaps, tmpFiles, reviews };
  } finally {
    db.close();
  }
}

/**
 * checkStore once the server has finished with the last reply: an upload's temp files are removed after its
 * reply is sent (onResponse, or the connection's close for a client that hung up), so a client can see the reply
 * a moment before the last one is gone. Waits up to 15 s for tmp/ to empty before calling a file left over (5 s
 * was once too short on a loaded 2-core machine).
 */
export async function checkSettledStore(
  dataDir: string,
  options: { ignoreTmp?: RegExp } = {},
): Promise<StoreCheck> {
  let store = checkStore(dataDir, options);
  for (let t = 0; t < 150 && store.tmpFiles.length > 0; t++) {
    await new Promise((r) => setTimeout(r, 100));
    store = checkStore(dataDir, options);
  }
  return store;
}
