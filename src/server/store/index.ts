/** The case store: the interface the server uses (types.ts) and the SQLite implementation behind it. */
import { SqliteCaseStore } from './sqlite.js';

export type * from './types.js';
export type { BlobKind, BlobStore } from './blobs.js';
export { FolderBlobStore } from './blobs.js';
export { SCHEMA_VERSION } from './migrations.js';
export { SqliteCaseStore } from './sqlite.js';

/** Opens (creating if needed) the case store of a data folder, with its pending migrations applied. */
export function openStore(dataDir: string): SqliteCaseStore {
  return SqliteCaseStore.open(dataDir);
}
