import { renameSync, writeFileSync } from 'node:fs';

/**
 * Writes `data` to `path` through a temporary file beside it, then renames: readers (a server loading the
 * model, a resumed run, another process sharing the feature cache) never see half a file.
 */
export function writeAtomic(path: string, data: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
