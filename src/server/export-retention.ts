/**
 * Retention of exports: their files hold patient data and would otherwise grow the database (or the data
 * folder's exports/) for ever. Every replica sweeps once at start and then periodically: export jobs that
 * finished (succeeded or failed) more than EXPORT_RETENTION_HOURS ago are deleted, then each of their files
 * that no remaining job names (CaseStore.sweepExports, race-free on both stores). Replicas sweeping at once is
 * harmless: each deletes what is still there. A swept export is simply not found (404) any more.
 */
import type { FastifyBaseLogger } from 'fastify';
import { EXPORT_JOB_KINDS } from './exports.js';
import type { CaseStore } from './store/index.js';

export const DEFAULT_EXPORT_RETENTION_HOURS = 24;
/** Between sweeps: a file lives at most this much longer than the retention. */
export const DEFAULT_EXPORT_SWEEP_SECONDS = 15 * 60;

export interface ExportRetentionOptions {
  /** Hours a finished export (job and file) is kept (default 24). */
  retentionHours?: number;
  /** Seconds between sweeps (default 900). */
  sweepSeconds?: number;
}

export interface ExportSweeper {
  /** Sweeps once now, then every `sweepSeconds`. */
  start(): void;
  /** One sweep now; what it removed. */
  sweep(): Promise<{ jobs: number; files: number }>;
  /** Stops the sweeps and waits for one in progress (before the store closes). */
  close(): Promise<void>;
}

export function exportSweeper(
  store: CaseStore,
  log: FastifyBaseLogger,
  options: ExportRetentionOptions = {},
): ExportSweeper {
  const hours = options.retentionHours ?? DEFAULT_EXPORT_RETENTION_HOURS;
  let inFlight: Promise<void> | undefined;
  let closed = false;

  const sweep = async () => {
    const removed = await store.sweepExports(
      Object.values(EXPORT_JOB_KINDS),
      new Date(Date.now() - hours * 3_600_000),
    );
    // A line only when something went: every 15 minutes of "nothing" would bury the log.
    if (removed.jobs > 0 || removed.files > 0)
      log.info({ ...removed, retentionHours: hours }, 'removed exports past their retention');
    return removed;
  };
  const tick = () => {
    // One at a time: a slow sweep (a large database) is not joined by the next.
    if (closed || inFlight) return;
    inFlight = sweep()
      .then(() => undefined)
      .catch((err: unknown) => {
        // A failed sweep waits for the next; the files are only kept longer meanwhile.
        if (!closed) log.warn({ err }, 'removing exports past their retention');
      })
      .finally(() => {
        inFlight = undefined;
      });
  };

  let timer: NodeJS.Timeout | undefined;
  return {
    start: () => {
      if (timer || closed) return;
      tick();
      timer = setInterval(tick, (options.sweepSeconds ?? DEFAULT_EXPORT_SWEEP_SECONDS) * 1000);
      // Never what keeps the process alive.
      timer.unref();
    },
    sweep,
    close: async () => {
      closed = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}
