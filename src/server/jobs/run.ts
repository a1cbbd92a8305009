/** Runs one claimed job: its handler with progress and a heartbeat, then the outcome, by its holder only. */
import type { CaseStore, JobRow } from '../store/index.js';
import { failureMessage, type JobKind } from './types.js';

/** How often a running job's row is touched when its handler reports nothing (seconds). */
const HEARTBEAT_SECONDS = 10;

export interface RunOutcome {
  /** false: another runner took the job over meanwhile (this one's result was not written). */
  stillHeld: boolean;
  error?: string;
}

export async function runClaimed(
  store: CaseStore,
  spec: JobKind,
  job: JobRow,
  owner: string,
  stop: AbortSignal,
): Promise<RunOutcome> {
  const abort = new AbortController();
  const onStop = () => abort.abort(stop.reason);
  stop.addEventListener('abort', onStop, { once: true });
  let last = { progress: job.progress, stage: job.stage };
  let lost = false;
  const write = async (progress: number, stage: string | null) => {
    last = { progress, stage };
    const held = await store.jobs.progress(job.id, owner, progress, stage).catch(() => true);
    if (!held && !lost) {
      lost = true;
      abort.abort(new Error('Another runner took this job over.'));
    }
  };
  const beat = setInterval(() => void write(last.progress, last.stage), HEARTBEAT_SECONDS * 1000);
  beat.unref();
  // A live runner ends its own overlong job (a second short of the expiry after which PostgreSQL would give
  // it to another replica), as a failure of the job, so two runners never work on it at once.
  const limit = Math.max(1, spec.expireSeconds - 1);
  const overlong = setTimeout(
    () => abort.abort(new Error(`The job took longer than its limit of ${limit} s and was stopped.`)),
    limit * 1000,
  );
  overlong.unref();
  // A handler that does not watch the signal is still left behind when it fires.
  const aborted = new Promise<never>((_, reject) => {
    const fire = () => reject(abort.signal.reason);
    if (abort.signal.aborted) fire();
    else abort.signal.addEventListener('abort', fire, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    const result = await Promise.race([
      spec.handler(job.input, {
        job,
        signal: abort.signal,
        progress: (fraction, stage) => write(Math.min(1, Math.max(0, fraction)), stage),
      }),
      aborted,
    ]);
    clearInterval(beat);
    if (stop.aborted) return { stillHeld: true, error: 'stopped' };
    const held = await store.jobs.finish(job.id, owner, { state: 'succeeded', result });
    return { stillHeld: held };
  } catch (err) {
    clearInterval(beat);
    // Stopping is not the job's failure: the queue decides (local: failed as a restart; PostgreSQL: retried).
    if (stop.aborted) return { stillHeld: true, error: 'stopped' };
    const error = failureMessage(err);
    const held = await store.jobs.finish(job.id, owner, { state: 'failed', error });
    return { stillHeld: held, error };
  } finally {
    clearInterval(beat);
    clearTimeout(overlong);
    stop.removeEventListener('abort', onStop);
  }
}
