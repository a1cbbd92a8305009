/**
 * Jobs on PostgreSQL through pg-boss: any replica's worker takes a job (SKIP LOCKED inside pg-boss); when the
 * replica running it dies, pg-boss's supervisor expires the job after its kind's expireSeconds and retries it,
 * so another replica takes it and runs it from the start (the job row's attempts counts the takes). The job
 * row is claimed by the replica that runs it: a replica that was only slow, not dead, can no longer write
 * to it once another took it over.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import PgBoss from 'pg-boss';
import { HematoError } from '../../errors.js';
import type { CaseStore, JobRow } from '../store/index.js';
import { runClaimed } from './run.js';
import type { JobKind, JobQueue } from './types.js';

export interface PgBossOptions {
  url: string;
  /** How often pg-boss's supervisor looks for expired jobs (seconds; default 30). */
  superviseSeconds?: number;
  /** How often an idle worker asks for a job (seconds; default 2). */
  pollSeconds?: number;
}

/** A job whose delivery pg-boss gave up on (retries spent) while its row still says it runs. */
const GIVEN_UP =
  'The replica running this job stopped, and it was retried until its attempts ran out; start it again.';

export class PgBossJobQueue implements JobQueue {
  readonly owner = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  readonly kind = 'postgres' as const;
  private readonly kinds = new Map<string, JobKind>();
  private readonly boss: PgBoss;
  private readonly stop = new AbortController();
  private readonly active = new Set<Promise<unknown>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: CaseStore,
    private readonly options: PgBossOptions,
  ) {
    this.boss = new PgBoss({
      connectionString: options.url,
      max: 3,
      maintenanceIntervalSeconds: options.superviseSeconds ?? 30,
      schedule: false,
    });
    // An error event without a listener would crash the process; a lost connection is retried by pg-boss.
    this.boss.on('error', () => undefined);
  }

  register(kind: string, spec: JobKind): void {
    this.kinds.set(kind, spec);
  }

  async submit(kind: string, input: unknown): Promise<JobRow> {
    const spec = this.kinds.get(kind);
    if (!spec) throw new HematoError(`No job of kind "${kind}".`, 'bad_request', 400);
    const job = await this.store.jobs.create(kind, input);
    try {
      await this.boss.send(kind, { id: job.id }, { id: job.id, ...this.retryOf(spec) });
    } catch (err) {
      await this.store.jobs.failUnfinished(job.id, 'The job could not be queued.').catch(() => undefined);
      throw err;
    }
    return job;
  }

  private retryOf(spec: JobKind) {
    return { expireInSeconds: spec.expireSeconds, retryLimit: spec.retries ?? 2, retryDelay: 1 };
  }

  async start(): Promise<void> {
    await this.boss.start();
    for (const [kind, spec] of this.kinds) {
      if (!(await this.boss.getQueue(kind))) {
        // Two replicas starting together may both create it: the second one's error means it exists.
        await this.boss.createQueue(kind, { name: kind, ...this.retryOf(spec) }).catch(async (err) => {
          if (!(await this.boss.getQueue(kind))) throw err;
        });
      }
      await this.boss.work<{ id: string }>(
        kind,
        { pollingIntervalSeconds: this.options.pollSeconds ?? 2, batchSize: 1 },
        (jobs) => this.track(this.take(spec, jobs[0].data.id)),
      );
    }
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), 30_000);
    this.sweeper.unref();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.active.add(p);
    void p.finally(() => this.active.delete(p)).catch(() => undefined);
    return p;
  }

  /** Runs a job pg-boss gave this replica (a first try, or a retry after another replica died). */
  private async take(spec: JobKind, id: string): Promise<void> {
    const job = await this.store.jobs.claim(id, this.owner);
    if (!job) return; // finished meanwhile (or removed): nothing to do
    const outcome = await runClaimed(this.store, spec, job, this.owner, this.stop.signal);
    // Stopping mid-job: a failed delivery is retried at once by another replica (or, if this one could not
    // say so before its connections closed, after the job expires).
    if (outcome.error === 'stopped') throw new Error('The replica running it stopped.');
  }

  /**
   * Fails the job rows pg-boss no longer delivers (failed after its last retry) though they still say queued
   * or running, so a follower sees why instead of waiting forever. Only unfinished rows are read: exports
   * make many short jobs, which must not push an old stuck one out of view.
   */
  private async sweep(): Promise<void> {
    for (const job of await this.store.jobs.list({ unfinished: true, limit: 50 })) {
      if (Date.now() - Date.parse(job.updatedAt) < 60_000) continue;
      const delivery = await this.boss.getJobById(job.kind, job.id, { includeArchive: true });
      if (!delivery || ['failed', 'cancelled', 'completed'].includes(delivery.state))
        await this.store.jobs.failUnfinished(job.id, GIVEN_UP);
    }
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.stop.abort(new Error('The replica is stopping.'));
    // Not graceful: a running job is left active for another replica (after expiry) rather than waited for.
    await this.boss.stop({ graceful: false, wait: true, close: true, timeout: 5000 }).catch(() => undefined);
  }
}
