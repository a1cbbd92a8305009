/**
 * The case store: the interface the server uses (types.ts) and its two implementations, SQLite in the data
 * folder (the embedded default) and PostgreSQL (several replicas on one database).
 */
import { join } from 'node:path';
import { PostgresCaseStore } from './postgres.js';
import { SqliteCaseStore } from './sqlite.js';
import type { CaseStore } from './types.js';

export type * from './types.js';
export type { BlobKind, BlobStore } from './blobs.js';
export { FolderBlobStore } from './blobs.js';
export { SCHEMA_VERSION } from './migrations.js';
export { PostgresCaseStore, redactUrl } from './postgres.js';
export { SqliteCaseStore } from './sqlite.js';

export interface StoreOptions {
  /** The data folder: SQLite's database and images, or (with databaseUrl) only upload temp files. */
  dataDir: string;
  /** `postgres://…`: cases, reviews, images and heat maps in that PostgreSQL database instead. */
  databaseUrl?: string;
}

/** Opens (creating if needed) the case store, with its pending migrations applied. */
export async function openStore(options: StoreOptions): Promise<CaseStore> {
  if (options.databaseUrl) {
    return PostgresCaseStore.open({ url: options.databaseUrl, tmpDir: join(options.dataDir, 'tmp') });
  }
  return SqliteCaseStore.open(options.dataDir);
}
