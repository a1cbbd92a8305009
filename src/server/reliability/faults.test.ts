// The server process under an operator's faults: kill -9 in the middle of predicts and reviews (every
// acknowledged write must be there after a restart), a second server on the same data folder, and a
// damaged database (issue 15, item 7).
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../imaging/random.js';
import { multipartBody } from '../../testing/bad-inputs.js';
import {
  killHard,
  rawRequest,
  startServerProcess,
  type ServerProcess,
} from '../../testing/server-process.js';
import { checkStore } from '../../testing/store-check.js';

const ROUNDS = 5;
const API = '/api/v1';

let dataDir: string;
const servers: ServerProcess[] = [];

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-faults-'));
});
afterAll(async () => {
  for (const s of servers) await killHard(s);
  rmSync(dataDir, { recursive: true, force: true });
});

function start(env: Record<string, string> = {}): ServerProcess {
  const s = startServerProcess(dataDir, { RATE_LIMIT: '0', ...env });
  servers.push(s);
  return s;
}

/** Distinct small field images (each its own bytes, so each is a new content-addressed file). */
async function images(n: number, seed: number): Promise<Buffer[]> {
  const rng = createRng(seed);
  return Promise.all(
    Array.from({ length: n }, () => {
      const px = Buffer.alloc(64 * 48 * 3);
      for (let i = 0; i < px.length; i++) px[i] = 150 + Math.floor(rng() * 100);
      return sharp(px, { raw: { width: 64, height: 48, channels: 3 } })
        .jpeg()
        .toBuffer();
    }),
  );
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Acknowledged {
  /** case id → sha256 of the image sent. */
  cases: Map<string, string>;
  /** case id → notes of acknowledged reviews. */
  reviews: Map<string, Set<string>>;
}

/**
 * Predict and review clients against the server until it dies; records what it acknowledged (a 200 whose
 * body arrived). Resolves once every client saw the server gone.
 */
async function loadUntilKilled(port: number, pool: Buffer[], ack: Acknowledged, round: number) {
  let alive = true;
  let sent = 0;
  const predictClient = async (c: number) => {
    for (let k = 0; alive; k++) {
      const files = [0, 1].map((j) => pool[(c * 997 + k * 2 + j + round * 131) % pool.length]);
      const body = multipartBody(
        files.map((bytes, j) => ({ filename: `r${round}-${c}-${k}-${j}.jpg`, bytes })),
      );
      sent++;
      try {
        const r = await rawRequest(port, {
          method: 'POST',
          path: `${API}/predict`,
          headers: { 'content-type': 'multipart/form-data; boundary=----hvReliability7MA4YWxkTrZu0gW' },
          body,
        });
        if (r.status !== 200) throw new Error(`predict ${r.status}: ${r.body.toString().slice(0, 200)}`);
        const cases = (JSON.parse(r.body.toString()) as { cases: { id: string }[] }).cases;
        cases.forEach((x, j) => ack.cases.set(x.id, sha256(files[j])));
      } catch (err) {
        if (/predict \d+/.test((err as Error).message)) throw err;
        alive = false;
      }
    }
  };
  const reviewClient = async (c: number) => {
    for (let k = 0; alive; k++) {
      const ids = [...ack.cases.keys()];
      if (ids.length === 0) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const id = ids[(k * 7 + c) % ids.length];
      const note = `round ${round} client ${c} #${k}`;
      sent++;
      try {
        const r = await rawRequest(port, {
          method: 'PATCH',
          path: `${API}/cases/${id}`,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ reviewLabel: 'lymphocyte', reviewer: `reviewer ${c}`, note }),
        });
        if (r.status !== 200) throw new Error(`review ${r.status}: ${r.body.toString().slice(0, 200)}`);
        const set = ack.reviews.get(id) ?? new Set<string>();
        set.add(note);
        ack.reviews.set(id, set);
      } catch (err) {
        if (/review \d+/.test((err as Error).message)) throw err;
        alive = false;
      }
    }
  };
  const clients = Promise.all([0, 1, 2].map(predictClient).concat([0, 1].map(reviewClient)));
  return { clients, sent: () => sent };
}

describe('faults', () => {
  it(`kill -9 during predicts and reviews (${ROUNDS} rounds): no acknowledged write lost; a second server is refused`, async () => {
    const pool = await images(400, 7);
    const ack: Acknowledged = { cases: new Map(), reviews: new Map() };
    const rng = createRng(99);
    const figures: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const server = start();
      const port = await server.port();

      // Everything acknowledged before the last kill, read back through the restarted server.
      for (const [id, sha] of ack.cases) {
        const r = await rawRequest(port, { path: `${API}/cases/${id}/image` });
        expect(r.status, `case ${id} after restart`).toBe(200);
        expect(sha256(r.body)).toBe(sha);
      }
      for (const [id, notes] of ack.reviews) {
        const r = await rawRequest(port, { path: `${API}/cases/${id}` });
        const have = new Set(
          (JSON.parse(r.body.toString()) as { reviews: { note: string }[] }).reviews.map((x) => x.note),
        );
        for (const note of notes) expect(have.has(note), `review "${note}" of ${id}`).toBe(true);
      }

      if (round === 1) {
        const second = start();
        const refused = await second.exited;
        expect(refused.code).toBe(1);
        expect(second.output()).toContain(
          `The data folder ${dataDir} is in use by another HematoVision server`,
        );
        expect(second.output()).not.toMatch(/^\s+at /m);
        expect((await rawRequest(port, { path: `${API}/health` })).status).toBe(200);
        figures.push('second server refused');
      }

      const before = ack.cases.size;
      const reviewsBefore = [...ack.reviews.values()].reduce((a, s) => a + s.size, 0);
      const load = await loadUntilKilled(port, pool, ack, round);
      await new Promise((r) => setTimeout(r, 700 + Math.floor(rng() * 1500)));
      await killHard(server);
      await load.clients;
      const reviews = [...ack.reviews.values()].reduce((a, s) => a + s.size, 0);
      figures.push(
        `round ${round}: ${load.sent()} requests, ${ack.cases.size - before} cases and ${reviews - reviewsBefore} reviews acknowledged`,
      );
    }

    // The folder after the last kill, read from outside: acknowledged cases whole, nothing half-written.
    const final = start();
    await final.port();
    const store = checkStore(dataDir, { ignoreTmp: /^\.ready-/ });
    const lostCases = [...ack.cases.keys()].filter((id) => !store.ids.has(id));
    const lostReviews = [...ack.reviews].flatMap(([id, notes]) =>
      [...notes].filter((n) => !(store.reviews.get(id) ?? []).some((r) => r.endsWith(`|${n}`))),
    );
    const reviewCount = [...ack.reviews.values()].reduce((a, s) => a + s.size, 0);
    console.log(
      `[reliability] kill -9: ${ROUNDS} rounds; ${figures.join('; ')}; acknowledged ${ack.cases.size} cases and ` +
        `${reviewCount} reviews; lost ${lostCases.length} cases and ${lostReviews.length} reviews; ` +
        `stored ${store.ids.size} cases (${store.ids.size - ack.cases.size} stored but not acknowledged: ` +
        `killed between commit and reply); broken images ${store.brokenImages.length}; tmp files ${store.tmpFiles.length}`,
    );
    expect(ack.cases.size).toBeGreaterThan(ROUNDS * 5);
    expect(reviewCount).toBeGreaterThan(ROUNDS);
    expect(lostCases).toEqual([]);
    expect(lostReviews).toEqual([]);
    expect(store.brokenImages).toEqual([]);
    // Uploads the kills cut off are swept when the next server takes the folder.
    expect(store.tmpFiles).toEqual([]);
    await killHard(final);
  });

  it('refuses a damaged database with a clear message, leaving it as it was', async () => {
    const db = join(dataDir, 'hematovision.db');
    // After the kill rounds the folder holds a database of several pages (and perhaps a WAL): damage the
    // b-tree pages of the tables.
    const pageSize = 4096;
    expect(statSync(db).size).toBeGreaterThan(3 * pageSize);
    const fd = openSync(db, 'r+');
    for (const page of [1, 2, 3]) writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, page * pageSize);
    closeSync(fd);
    rmSync(`${db}-wal`, { force: true });
    rmSync(`${db}-shm`, { force: true });
    const s = start();
    const { code } = await s.exited;
    expect(code).toBe(1);
    expect(s.output()).toMatch(/hematovision\.db is damaged [\s\S]*will not start/);
    expect(s.output()).not.toMatch(/^\s+at /m);
    console.log(
      `[reliability] damaged database: refused (exit ${code}): ${s.output().trim().slice(0, 160)}…`,
    );
  });
});
