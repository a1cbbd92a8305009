// Rate limits on PostgreSQL: the counters are in the shared database, so two replicas allow each budget once
// (not twice), sign-in attempts included; a database that fails lets requests through; ended windows go.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Replicas } from '../testing/backends.js';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../testing/postgres.js';
import type { AppOptions } from './app.js';
import { createAccount } from './auth/users.js';
import { sweepPeriodically } from './shared-rate-limits.js';
import { PostgresCaseStore } from './store/index.js';

notePostgresSkip('rate limits shared by replicas');

const API = '/api/v1';
const PASSWORD = 'correct horse battery';
const CLIENT = '198.51.100.20';

describe.skipIf(!hasPostgres)('rate limits on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let admin: pg.Client;
  const replicas = new Replicas(() => db.url, 'hv-pg-limits-');
  const replica = (options: Partial<AppOptions> = {}) => replicas.start(options);

  const health = (app: FastifyInstance, remoteAddress = CLIENT) =>
    app.inject({ url: `${API}/health`, remoteAddress });
  const signIn = (app: FastifyInstance, password: string, remoteAddress = CLIENT) =>
    app.inject({
      method: 'POST',
      url: `${API}/session`,
      payload: { name: 'north', password },
      remoteAddress,
    });

  beforeAll(async () => {
    db = await freshDatabase('limits_pg');
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
  });
  beforeEach(async () => {
    await replicas.close();
    // The first replica of the file creates the table (migration 10).
    await admin.query('TRUNCATE rate_limits').catch(() => undefined);
  });
  afterAll(async () => {
    await replicas.close();
    await admin?.end();
    await db?.drop();
    await replicas.remove();
  });

  it('gives two replicas one budget per client: two requests on each, the fourth is refused', async () => {
    const [a, b] = [await replica({ rateLimits: { max: 3 } }), await replica({ rateLimits: { max: 3 } })];
    expect((await health(a)).statusCode).toBe(200);
    expect((await health(a)).statusCode).toBe(200);
    const third = await health(b);
    expect(third.statusCode).toBe(200);
    expect(third.headers['x-ratelimit-remaining']).toBe('0');
    const fourth = await health(b);
    expect(fourth.statusCode).toBe(429);
    expect(fourth.json()).toMatchObject({ error: 'too_many_requests' });
    const retry = Number(fourth.headers['retry-after']);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    // Refused on the first replica too, and another client is untouched on both.
    expect((await health(a)).statusCode).toBe(429);
    expect((await health(a, '203.0.113.5')).statusCode).toBe(200);
    expect((await health(b, '203.0.113.5')).statusCode).toBe(200);
  });

  it('limits sign-in attempts across replicas: the right password is refused once over', async () => {
    const [a, b] = [
      await replica({ rateLimits: { signInMax: 3 } }),
      await replica({ rateLimits: { signInMax: 3 } }),
    ];
    await createAccount(a.caseStore.accounts, {
      name: 'north',
      role: 'clinic',
      clinic: 'north',
      password: PASSWORD,
    });
    expect((await signIn(a, 'guess-one-1')).statusCode).toBe(401);
    expect((await signIn(b, 'guess-two-2')).statusCode).toBe(401);
    expect((await signIn(a, 'guess-three')).statusCode).toBe(401);
    const blocked = await signIn(b, PASSWORD);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({
      error: 'too_many_attempts',
      message: expect.stringMatching(/at most 3 per 15 min/),
    });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(60);
    expect((await signIn(a, PASSWORD)).statusCode).toBe(429);
    // The owner from another address is not locked out.
    expect((await signIn(b, PASSWORD, '203.0.113.5')).statusCode).toBe(200);
  });

  it('counts concurrent hits from two replicas without losing any', async () => {
    const [a, b] = [await replica({ rateLimits: { max: 20 } }), await replica({ rateLimits: { max: 20 } })];
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => health(i % 2 ? a : b)));
    const codes = replies.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 200)).toHaveLength(20);
    expect(codes.filter((c) => c === 429)).toHaveLength(10);
  });

  it('lets requests through while the counters fail, and says so once', async () => {
    const lines: { level: number; msg: string }[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    const a = await replica({ rateLimits: { max: 2 }, logger: { level: 'info', stream } });
    const about = (word: string) => lines.filter((l) => l.msg.includes(`rate-limit counters ${word}`));
    await admin.query('ALTER TABLE rate_limits RENAME TO rate_limits_away');
    try {
      for (let i = 0; i < 5; i++) expect((await health(a)).statusCode).toBe(200);
      expect(about('unavailable')).toHaveLength(1);
      expect(about('unavailable')[0].level).toBe(50);
    } finally {
      await admin.query('ALTER TABLE rate_limits_away RENAME TO rate_limits');
    }
    // Back: limits apply again (counted from here), and the recovery is said once.
    expect((await health(a)).statusCode).toBe(200);
    expect((await health(a)).statusCode).toBe(200);
    expect((await health(a)).statusCode).toBe(429);
    expect(about('available again')).toHaveLength(1);
    expect(about('unavailable')).toHaveLength(1);
  });
});

describe.skipIf(!hasPostgres)('shared counters', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let store: PostgresCaseStore;
  let dataDir: string;

  beforeAll(async () => {
    db = await freshDatabase('counters_pg');
    dataDir = mkdtempSync(join(tmpdir(), 'hv-pg-counters-'));
    store = await PostgresCaseStore.open({ url: db.url, tmpDir: join(dataDir, 'tmp') });
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('counts within a window, then starts a new one at 1 once it ended', async () => {
    expect(await store.rateCounters.hit('k', 200)).toMatchObject({ count: 1 });
    const second = await store.rateCounters.hit('k', 200);
    expect(second.count).toBe(2);
    expect(second.ttlMs).toBeGreaterThan(0);
    expect(second.ttlMs).toBeLessThanOrEqual(200);
    await new Promise((r) => setTimeout(r, 250));
    const fresh = await store.rateCounters.hit('k', 200);
    expect(fresh.count).toBe(1);
    expect(fresh.ttlMs).toBeGreaterThan(150);
  });

  it('removes ended windows periodically and keeps running ones', async () => {
    await store.rateCounters.hit('short', 50);
    await store.rateCounters.hit('long', 60_000);
    const app = Fastify();
    sweepPeriodically(app, store.rateCounters, 30);
    await new Promise((r) => setTimeout(r, 200));
    await app.close();
    const left = await keys(db.url);
    expect(left).toContain('long');
    expect(left).not.toContain('short');
  });
});

async function keys(url: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ key: string }>('SELECT key FROM rate_limits ORDER BY key');
    return rows.map((r) => r.key);
  } finally {
    await c.end();
  }
}
