/**
 * Image and heat-map bytes, and the files export jobs make, addressed by their sha256: identical bytes are
 * stored once.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HematoError } from '../../errors.js';
import type { StoredCase } from './types.js';

export type BlobKind = 'image' | 'heatmap' | 'export';

export interface BlobStore {
  /** Stores the bytes under `sha` durably: resolves only once they are on disk, complete. */
  put(kind: BlobKind, sha: string, bytes: Buffer): Promise<void>;
  /** The bytes; a `file_missing` error (500) when they are gone. `what` names them in that message. */
  get(kind: BlobKind, sha: string, what: string): Promise<Buffer>;
  /**
   * Removes bytes the caller found no case using; gone already is fine. The caller's check must not race a
   * new case taking them: the folder store removes before its promise settles (SQLite's store checks and
   * removes in one event-loop turn), PostgreSQL's foreign keys refuse to remove bytes a case references.
   */
  remove(kind: BlobKind, sha: string): Promise<void>;
}

/**
 * The bytes side of a case store (CaseStore's readImage, readHeatmap, putExportFile, readExportFile): the same
 * over any BlobStore, so both stores inherit it and keep only their rows.
 */
export abstract class CaseBlobs {
  protected abstract readonly blobs: BlobStore;

  /** A case's image bytes; a `file_missing` error when they are gone. */
  async readImage(c: CaseBytes): Promise<Buffer> {
    return this.blobs.get('image', c.imageSha256, `image of case ${c.id}`);
  }

  /** A case's stored heat map (PNG), or null when none has been drawn yet. */
  async readHeatmap(c: CaseBytes): Promise<Buffer | null> {
    return c.heatmapSha256 ? this.blobs.get('heatmap', c.heatmapSha256, `heat map of case ${c.id}`) : null;
  }

  /** A file an export job stored (putExportFile: sqlite-exports.ts, postgres-exports.ts); `file_missing` when gone. */
  async readExportFile(sha: string): Promise<Buffer> {
    return this.blobs.get('export', sha, `export file ${sha.slice(0, 12)}`);
  }
}

/** What of a case names its bytes. */
type CaseBytes = Pick<StoredCase, 'id' | 'imageSha256' | 'heatmapSha256'>;

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

const FOLDERS: Record<BlobKind, string> = { image: 'images', heatmap: 'heatmaps', export: 'exports' };
const STALE_TEMP_MS = 60 * 60 * 1000;

/**
 * `<dataDir>/images/<sha256[0..2]>/<sha256>` and `<dataDir>/heatmaps/...`, written through `<dataDir>/tmp`
 * (same file system, so a rename into place is atomic).
 */
export class FolderBlobStore implements BlobStore {
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.tmpDir = join(dataDir, 'tmp');
    for (const sub of [...Object.values(FOLDERS), 'tmp'])
      mkdirSync(join(dataDir, sub), { recursive: true, mode: 0o750 });
  }

  path(kind: BlobKind, sha: string): string {
    return join(this.dataDir, FOLDERS[kind], sha.slice(0, 2), sha);
  }

  /** temp file → write → fsync → rename → fsync dir: the final path only ever holds complete bytes. */
  async put(kind: BlobKind, sha: string, bytes: Buffer): Promise<void> {
    const path = this.path(kind, sha);
    const existing = await stat(path).catch(() => null);
    if (existing?.isFile() && existing.size === bytes.length) return;
    const dir = dirname(path);
    const created = await mkdir(dir, { recursive: true, mode: 0o750 });
    const tmp = join(this.tmpDir, `${randomUUID()}.part`);
    const handle = await open(tmp, 'wx', 0o640);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await handle.close();
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fsyncDir(dir);
    if (created) await fsyncDir(dirname(dir));
  }

  async get(kind: BlobKind, sha: string, what: string): Promise<Buffer> {
    const path = this.path(kind, sha);
    try {
      return await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(path)) {
        throw new HematoError(`The stored ${what} is missing from the data folder.`, 'file_missing', 500);
      }
      throw err;
    }
  }

  async remove(kind: BlobKind, sha: string): Promise<void> {
    this.removeNow(kind, sha);
  }

  /** Synchronous, so that nothing runs between the caller's reference check and the unlink. */
  removeNow(kind: BlobKind, sha: string): void {
    try {
      unlinkSync(this.path(kind, sha));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Leftovers of a crash (or an interrupted upload); recent ones may belong to a request in flight. */
  removeStaleTemps(): void {
    removeStaleTemps(this.tmpDir);
  }
}

/**
 * Upload temp files older than `maxAgeMs` (an hour): left by a crash (recent ones may belong to a request in
 * flight). 0: all of them, for the one process that holds the data folder's lock.
 */
export function removeStaleTemps(tmpDir: string, maxAgeMs = STALE_TEMP_MS): void {
  const now = Date.now();
  for (const name of readdirSync(tmpDir)) {
    const p = join(tmpDir, name);
    try {
      if (now - statSync(p).mtimeMs >= maxAgeMs) unlinkSync(p);
    } catch {
      // Already gone or not ours to remove: neither matters.
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
