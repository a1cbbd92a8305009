// Reports rendered in a worker thread: the same bytes as rendering in place, while the caller's event loop
// stays free (issue 15).
import { getPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { HematoError } from '../errors.js';
import { sampleReport } from '../testing/specimen-report.js';
import { BULK_NICE, threadStats } from '../thread-priority.js';
import { ReportRenderer } from './render-thread.js';
import { renderSpecimenPdf, type SpecimenReport } from './specimen-pdf.js';

const renderer = new ReportRenderer();
afterAll(() => renderer.close());

/**
 * What the caller's event loop spent while `work` ran: its busy time (event-loop utilisation) and the longest
 * a 1 ms timer waited. Rendering in place is chopped into slices by its awaits (each crop goes through sharp),
 * so its longest single wait stays short, but the loop is busy for most of the render: every other request
 * is slowed by that much.
 */
async function loopCost(work: () => Promise<unknown>): Promise<{ busyMs: number; maxLagMs: number }> {
  let maxLagMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last);
    last = now;
  }, 1);
  const start = performance.eventLoopUtilization();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { busyMs: performance.eventLoopUtilization(start).active, maxLagMs };
}

describe('ReportRenderer', () => {
  it('makes the same bytes as rendering in place, signed or draft, with either font', async () => {
    const signed = await sampleReport({ gallery: 12 });
    const draft = { ...(await sampleReport({ gallery: 3, signed: false })), specimenId: 'Ωμέγα-7 café' };
    const inThread = await renderer.render(signed);
    expect(inThread.subarray(0, 5).toString()).toBe('%PDF-');
    expect(inThread.equals(await renderSpecimenPdf(signed))).toBe(true);
    expect((await renderer.render(draft)).equals(await renderSpecimenPdf(draft))).toBe(true);
    expect(
      (await renderer.render(draft, { builtInFont: true })).equals(
        await renderSpecimenPdf(draft, { builtInFont: true }),
      ),
    ).toBe(true);
  });

  it('keeps crops that are slices of a larger buffer, and a damaged crop', async () => {
    const report = await sampleReport({ gallery: 4 });
    const big = Buffer.concat([Buffer.alloc(100), report.gallery[1].crop, Buffer.alloc(100)]);
    report.gallery[1].crop = big.subarray(100, big.length - 100);
    report.gallery[2].crop = Buffer.from('not an image');
    expect((await renderer.render(report)).equals(await renderSpecimenPdf(report))).toBe(true);
  });

  it('leaves the event loop free while a 200-cell gallery renders', async () => {
    const report = await sampleReport({ gallery: 200 });
    await renderer.render(await sampleReport({ gallery: 1 })); // the thread is started (once per server)
    let pdf: Buffer | undefined;
    const cost = await loopCost(async () => {
      pdf = await renderer.render(report);
    });
    expect(pdf!.subarray(0, 5).toString()).toBe('%PDF-');
    // In place: 0.3–1 s busy here (its longest timer wait 14–100 ms); in the thread only the copies of the
    // crops and of the PDF (about 15 ms).
    console.info(
      `report of 200 cells in a thread: loop busy ${cost.busyMs.toFixed(0)} ms, longest timer wait ${cost.maxLagMs.toFixed(0)} ms`,
    );
    expect(cost.busyMs).toBeLessThan(100);
    // Loose: on 2 busy cores the thread and this loop compete for time; no single long stall.
    expect(cost.maxLagMs).toBeLessThan(250);
  });

  it('fails a report it cannot make with report_failed, and makes the next one', async () => {
    const broken = {
      ...(await sampleReport({ gallery: 1 })),
      differential: undefined,
    } as unknown as SpecimenReport;
    const err = await renderer.render(broken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HematoError);
    expect(err).toMatchObject({ code: 'report_failed', status: 500 });
    const ok = await renderer.render(await sampleReport({ gallery: 1 }));
    expect(ok.subarray(0, 5).toString()).toBe('%PDF-');
  });

  it.runIf(process.platform === 'linux')('renders on a thread of its own at low priority', async () => {
    const ours = getPriority(0);
    expect(ours).toBeLessThan(BULK_NICE);
    const before = await threadStats();
    const fresh = new ReportRenderer();
    try {
      await fresh.render(await sampleReport({ gallery: 2 }));
      const added = [...(await threadStats())].filter(([tid]) => !before.has(tid));
      expect(added.filter(([, t]) => t.nice !== ours).map(([, t]) => t.nice)).toEqual([BULK_NICE]);
    } finally {
      await fresh.close();
    }
  });

  it('refuses reports once closed', async () => {
    const closed = new ReportRenderer();
    await closed.render(await sampleReport({ gallery: 0 }));
    await closed.close();
    await expect(closed.render(await sampleReport({ gallery: 0 }))).rejects.toMatchObject({ code: 'closed' });
  });
});
