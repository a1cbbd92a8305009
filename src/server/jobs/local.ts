/**
 * The single-process queue (SQLite): this server claims its own job rows, one job of each kind at a time (as
 * pg-boss's one worker per kind does), so a report export never waits behind a half-hour adaptation. A job
 * running when the process died or stopped is failed with a clear message on the next start (its partial
 * work is never used); nothing else is lost.
 */
import { randomUUID } from 'node:crypto';
import { HematoError } from '../../errors.js';
import type { CaseStore, JobRow } from '../store/index.js';
import { runClaimed } from './run.js';
import type { JobKind, JobQueue } from './types.js';

export const RESTARTED =
  'The server stopped while this job ran (a restart or a crash); what it had done was discarded. Start it again.';

export class LocalJobQueue implements JobQueue {
  readonly owner = `local-${randomUUID()}`;
  readonly kind = 'local' as const;
  private readonly kinds = new Map<string, JobKind>();
  private readonly stop = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  /** The kinds with a job running here, and that run. */
  private readonly running = new Map<string, Promise<void>>();
  private started = false;

  constructor(
    private readonly store: CaseStore,
    private readonly pollMs = 1000,
  ) {}

  register(kind: string, spec: JobKind): void {
    this.kinds.set(kind, spec);
  }

  async submit(kind: string, input: unknown): Promise<JobRow> {
    if (!this.kinds.has(kind)) throw new HematoError(`No job of kind "${kind}".`, 'bad_request', 400);
    const job = await this.store.jobs.create(kind, input);
    this.kick();
    return job;
  }

  async start(): Promise<void> {
    // Only this process uses the data folder (its lock): a job still "running" belongs to a dead process.
    await this.store.jobs.failRunning(RESTARTED);
    this.started = true;
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Takes the next queued job of each kind that has none running here already. */
  private kick(): void {
    if (!this.started || this.stop.signal.aborted) return;
    for (const kind of this.kinds.keys()) {
      if (this.running.has(kind)) continue;
      this.running.set(
        kind,
        this.next(kind)
          .catch(() => undefined)
          .finally(() => this.running.delete(kind)),
      );
    }
  }

  private async next(kind: string): Promise<void> {
    for (;;) {
      if (this.stop.signal.aborted) return;
      const job = await this.store.jobs.claimNext([kind], this.owner);
      if (!job) return;
      await runClaimed(this.store, this.kinds.get(kind) as JobKind, job, this.owner, this.stop.signal);
    }
  }

  async close(): Promise<void> {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.stop.abort(new Error('The server is stopping.'));
    await Promise.all(this.running.values());
    await this.store.jobs.failRunning(RESTARTED, this.owner).catch(() => undefined);
  }
}
