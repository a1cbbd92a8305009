/**
 * The @fastify/rate-limit store on the database's shared counters (PostgreSQL, store.rateCounters): every
 * replica counts against one budget per key, so N replicas allow each limit once, not N times. Without shared
 * counters (SQLite: one process) the plugin keeps its own in memory.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { RateCounters } from './store/index.js';

/** How often each replica removes ended windows (any replica's sweep removes every replica's rows). */
export const SWEEP_INTERVAL_MS = 60_000;

/**
 * A database that fails must not turn every request into a 500 (nor lock everyone out): the limiter then lets
 * requests through (the plugin's `skipOnError`) and this says so once per outage, not once per request.
 */
class OutageLog {
  private down = false;
  constructor(private readonly log: FastifyBaseLogger) {}

  failed(err: unknown): void {
    if (this.down) return;
    this.down = true;
    this.log.error(
      { err },
      'rate-limit counters unavailable: requests are let through unlimited until the database answers',
    );
  }

  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    this.log.info('rate-limit counters available again: limits apply');
  }
}

/** One per app: the plugin's `child` (a limiter per route or createRateLimit) shares it. */
class SharedStore implements FastifyRateLimitStore {
  constructor(
    private readonly counters: RateCounters,
    private readonly outage: OutageLog,
  ) {}

  incr(
    key: string,
    callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
    timeWindow: number,
  ): void {
    this.counters.hit(key, timeWindow).then(
      ({ count, ttlMs }) => {
        this.outage.succeeded();
        callback(null, { current: count, ttl: ttlMs });
      },
      (err: unknown) => {
        this.outage.failed(err);
        callback(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  child(): FastifyRateLimitStore {
    return this;
  }
}

/**
 * The store class for the plugin's `store` option. Keys are the limiters' own (rate-limits.ts gives each
 * budget a distinct prefix), so one table holds them all. continueExceeding and exponentialBackoff are not
 * supported (the server uses neither).
 */
export function sharedStore(counters: RateCounters, log: FastifyBaseLogger): FastifyRateLimitStoreCtor {
  const outage = new OutageLog(log);
  return class extends SharedStore {
    constructor() {
      super(counters, outage);
    }
  };
}

/** Removes ended windows every SWEEP_INTERVAL_MS until the app closes; a failed sweep waits for the next. */
export function sweepPeriodically(
  app: FastifyInstance,
  counters: RateCounters,
  intervalMs = SWEEP_INTERVAL_MS,
): void {
  let closing = false;
  const timer = setInterval(() => {
    counters.sweep().catch((err: unknown) => {
      if (!closing) app.log.warn({ err }, 'removing ended rate-limit windows');
    });
  }, intervalMs);
  // Never what keeps the process alive.
  timer.unref();
  app.addHook('onClose', async () => {
    closing = true;
    clearInterval(timer);
  });
}
