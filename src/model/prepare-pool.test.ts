import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { oneBitBmp } from '../testing/bmp.js';
import { discJpeg } from '../testing/cells.js';
import { REPO_ROOT } from '../testing/shared.js';
import { BULK_NICE, threadStats } from '../thread-priority.js';
import { prepareImage } from './inputs.js';
import { BulkHold } from './bulk-hold.js';
import { PreparePool } from './prepare-pool.js';
import type { ModelCard } from './types.js';

const card = JSON.parse(readFileSync(join(REPO_ROOT, 'models/model.json'), 'utf8')) as ModelCard;
const prep = card.preprocessing;

let pool: PreparePool;
beforeAll(() => {
  pool = new PreparePool(2);
});
afterAll(async () => {
  await pool.close();
});

describe('PreparePool', () => {
  it('gives exactly what prepareImage gives on this thread', async () => {
    const jpeg = await discJpeg(3);
    const here = await prepareImage(jpeg, prep);
    const there = await pool.prepare(jpeg, prep);
    expect(there.width).toBe(here.width);
    expect(there.regions.map((r) => r.box)).toEqual(here.regions.map((r) => r.box));
    expect(there.regions.length).toBeGreaterThan(0);
    for (const [i, r] of there.regions.entries())
      expect(Buffer.from(r.pixels.data).equals(Buffer.from(here.regions[i].pixels.data))).toBe(true);
  });

  it('refuses a bad image with the same error', async () => {
    const err = await pool.prepare(Buffer.from('not an image'), prep).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidImageError);
    expect(err).toMatchObject({ code: 'unsupported_format', status: 415 });
    const cut = await pool.prepare(oneBitBmp(100, 100).subarray(0, 300), prep).catch((e: unknown) => e);
    expect(cut).toMatchObject({ code: 'corrupt_image', status: 400 });
  });

  it('keeps the event loop free while a huge BMP decodes, and a small image does not wait for it', async () => {
    const big = oneBitBmp(7000, 7000);
    const small = await discJpeg(1);
    let maxGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const t0 = performance.now();
    const group = pool.group();
    // Two bombs of one client, then another client's photo.
    const bombs = [pool.prepare(big, prep, {}, group), pool.prepare(big, prep, {}, group)];
    let smallAt = 0;
    await new Promise((r) => setTimeout(r, 20));
    await pool.prepare(small, prep).then(() => (smallAt = performance.now() - t0));
    const bigResults = await Promise.all(bombs);
    const bigAt = performance.now() - t0;
    clearInterval(ticker);
    expect(bigResults[0].width).toBe(7000);
    console.log(
      `two 7000² 1-bit BMPs prepared in ${bigAt.toFixed(0)} ms; a photo sent meanwhile ready after ` +
        `${smallAt.toFixed(0)} ms; longest event-loop gap ${maxGap.toFixed(0)} ms`,
    );
    // On this thread one such decode stalled everything for 1.8 s (issue 15).
    expect(maxGap).toBeLessThan(250);
    expect(smallAt).toBeLessThan(bigAt / 2);
  });

  it('holds a bulk request’s images back while interactive work runs, and still prepares them all', async () => {
    const hold = new BulkHold(50);
    const held = new PreparePool(2, hold);
    try {
      const jpeg = await discJpeg(2);
      const forever = hold.begin();
      const bulk = held.group('bulk');
      // Held throughout: one image per 50 ms still starts (no hang).
      const all = await Promise.all([0, 1, 2].map(() => held.prepare(jpeg, prep, {}, bulk)));
      expect(all.map((p) => p.regions.length > 0)).toEqual([true, true, true]);
      // Held, then released: the release starts what waits.
      hold.bulkStarted();
      const after = held.prepare(jpeg, prep, {}, held.group('bulk'));
      setTimeout(forever, 10);
      expect((await after).width).toBe(all[0].width);
    } finally {
      await held.close();
    }
  });

  it.runIf(process.platform === 'linux')(
    'runs large and bulk images on one thread of its own at low priority, the others at ours',
    async () => {
      const ours = getPriority(0);
      expect(ours).toBeLessThan(BULK_NICE);
      const before = await threadStats();
      const fresh = new PreparePool(2);
      try {
        const jpeg = await discJpeg(2);
        // Each of the three threads answers once: two photos and a bulk image.
        await Promise.all([
          fresh.prepare(jpeg, prep),
          fresh.prepare(jpeg, prep),
          fresh.prepare(jpeg, prep, {}, fresh.group('bulk')),
        ]);
        const added = [...(await threadStats())].filter(([tid]) => !before.has(tid));
        // The restricted thread alone (not libuv's or sharp's threads it used meanwhile).
        const low = added.filter(([, t]) => t.nice !== ours);
        expect(low.map(([, t]) => t.nice)).toEqual([BULK_NICE]);
        expect(added.filter(([, t]) => t.nice === ours).length).toBeGreaterThanOrEqual(2);
        expect(getPriority(0)).toBe(ours);
      } finally {
        await fresh.close();
      }
    },
  );
});
