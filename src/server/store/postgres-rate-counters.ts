/** Rate-limit counters in PostgreSQL (migration 10), so every replica counts against the same budgets. */
import type pg from 'pg';
import type { RateCounters } from './types.js';

/**
 * One statement per hit: the upsert takes the row's lock, so concurrent hits from any replica are counted
 * one after another (no lost increments), and an ended window restarts in the same step. The database's
 * clock decides windows, so replicas whose clocks differ still agree.
 */
const HIT = `
  INSERT INTO rate_limits AS r (key, count, expires_at)
  VALUES ($1, 1, now() + $2 * interval '1 millisecond')
  ON CONFLICT (key) DO UPDATE SET
    count      = CASE WHEN r.expires_at <= now() THEN 1 ELSE r.count + 1 END,
    expires_at = CASE WHEN r.expires_at <= now() THEN excluded.expires_at ELSE r.expires_at END
  RETURNING count,
    greatest(0, ceil(extract(epoch FROM r.expires_at - now()) * 1000))::float8 AS ttl_ms`;

export class PostgresRateCounters implements RateCounters {
  constructor(private readonly pool: pg.Pool) {}

  async hit(key: string, windowMs: number): Promise<{ count: number; ttlMs: number }> {
    const { rows } = await this.pool.query<{ count: number; ttl_ms: number }>(HIT, [key, windowMs]);
    return { count: rows[0].count, ttlMs: rows[0].ttl_ms };
  }

  async sweep(): Promise<number> {
    const { rowCount } = await this.pool.query('DELETE FROM rate_limits WHERE expires_at <= now()');
    return rowCount ?? 0;
  }
}
