/**
 * One server per data folder: `<dataDir>/server.lock` holds the owner's pid. Two servers on one folder lose
 * images (each guards the files the other's inserts still need only in its own memory), so a second one is
 * refused; a lock left by a process that is gone (kill -9, power loss) is taken over.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { HematoError } from '../errors.js';

export const LOCK_FILE = 'server.lock';

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

/** Locks held by this process (a pid alone cannot tell this process's lock from a stale one with its pid). */
const held = new Set<string>();

export interface DataLock {
  readonly path: string;
  /** Removes the lock file if it is still ours; safe to call more than once. */
  release(): void;
}

/** Takes the data folder's lock or throws a HematoError naming the folder and the process that holds it. */
export function lockDataDir(dataDir: string): DataLock {
  const path = join(dataDir, LOCK_FILE);
  if (held.has(path)) throw lockedError(dataDir, { pid: process.pid, host: hostname(), startedAt: '' });
  const mine: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  // Written beside it, then linked into place: the lock file appears complete or not at all.
  const temp = `${path}.${process.pid}.${Date.now()}`;
  writeFileSync(temp, text, { mode: 0o640 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(temp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const other = readLock(path);
      if ((other && isAlive(other)) || attempt >= 2)
        throw lockedError(dataDir, other ?? { pid: -1, host: '?', startedAt: '' });
      takeOverStale(path, other);
    }
  } finally {
    unlinkSync(temp);
  }
  held.add(path);
  if (held.size === 1 && !exitHook) {
    // The locks go with the process on any normal exit, even one that skips closing the server.
    exitHook = () => [...held].forEach(unlock);
    process.once('exit', exitHook);
  }
  return { path, release: () => unlock(path) };
}

let exitHook: (() => void) | undefined;

function unlock(path: string): void {
  if (!held.delete(path)) return;
  try {
    if (readLock(path)?.pid === process.pid) unlinkSync(path);
  } catch {
    // Gone already: nothing to release.
  }
}

/** Moves a stale lock aside atomically; if another starter replaced it meanwhile, puts that one back. */
function takeOverStale(path: string, stale: LockInfo | undefined): void {
  const aside = `${path}.stale.${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readLock(aside);
  if (stale && moved && moved.pid !== stale.pid) {
    // Not the stale lock we read: a live starter's. Restore it; our retry then finds it held.
    try {
      linkSync(aside, path);
    } catch {
      // Someone else took the place meanwhile: our retry sees theirs.
    }
  }
  unlinkSync(aside);
}

function readLock(path: string): LockInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    return Number.isInteger(info.pid) ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Another host's lock (a shared network folder) cannot be checked and counts as held. */
function isAlive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true;
  // Our own pid on a lock we do not hold: left by an earlier process that had the same pid (containers).
  if (info.pid === process.pid) return false;
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedError(dataDir: string, other: LockInfo): HematoError {
  const who =
    other.pid === process.pid
      ? 'this process'
      : other.pid < 0
        ? 'its lock keeps changing'
        : `process ${other.pid}${other.host !== hostname() ? ` on ${other.host}` : ''}`;
  return new HematoError(
    `The data folder ${dataDir} is in use by another HematoVision server (${who}). Two servers on one ` +
      `folder lose images: stop the other one, or give this one its own DATA_DIR. If no server runs, ` +
      `remove ${join(dataDir, LOCK_FILE)}.`,
    'data_dir_locked',
    500,
  );
}
