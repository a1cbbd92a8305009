// The export sweeper (export-retention.ts) on a stand-in store: once at start, then periodically, with the
// export kinds and the cut-off of EXPORT_RETENTION_HOURS; a log line when it removed something; one sweep at
// a time; a failure logged and the next tried. And EXPORT_RETENTION_HOURS read and checked with the other
// settings (env.ts). The stores' own sweeps: contract-exports.ts; the routes after a sweep: exports.test.ts.
import type { FastifyBaseLogger } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { hardeningFromEnv } from './env.js';
import { exportSweeper, type ExportSweeper } from './export-retention.js';
import type { CaseStore } from './store/index.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

function standIn(answers: (() => Promise<{ jobs: number; files: number }>)[]) {
  const calls: { kinds: string[]; before: Date; at: number }[] = [];
  const store = {
    sweepExports: (kinds: string[], before: Date) => {
      calls.push({ kinds, before, at: Date.now() });
      return (answers.shift() ?? (async () => ({ jobs: 0, files: 0 })))();
    },
  } as unknown as CaseStore;
  const lines: { level: string; obj: unknown; msg: string }[] = [];
  const log = {
    info: (obj: unknown, msg: string) => lines.push({ level: 'info', obj, msg }),
    warn: (obj: unknown, msg: string) => lines.push({ level: 'warn', obj, msg }),
  } as unknown as FastifyBaseLogger;
  return { store, log, calls, lines };
}

let sweeper: ExportSweeper | undefined;
afterEach(async () => {
  await sweeper?.close();
  sweeper = undefined;
});

describe('export sweeps', () => {
  it('sweeps the export kinds at start and then periodically, cutting off at the retention, logging what went', async () => {
    const s = standIn([async () => ({ jobs: 3, files: 2 })]);
    sweeper = exportSweeper(s.store, s.log, { retentionHours: 48, sweepSeconds: 0.05 });
    expect(s.calls).toHaveLength(0); // not before start
    sweeper.start();
    expect(s.calls).toHaveLength(1); // at once, at start
    await wait(5);
    expect(s.calls[0].kinds.sort()).toEqual(['export-cases', 'export-report']);
    expect(s.calls[0].at - s.calls[0].before.getTime()).toBeGreaterThanOrEqual(48 * 3_600_000);
    expect(s.calls[0].at - s.calls[0].before.getTime()).toBeLessThan(48 * 3_600_000 + 1000);
    expect(s.lines).toEqual([
      {
        level: 'info',
        obj: { jobs: 3, files: 2, retentionHours: 48 },
        msg: 'removed exports past their retention',
      },
    ]);
    await wait(200);
    expect(s.calls.length).toBeGreaterThanOrEqual(3);
    expect(s.lines).toHaveLength(1); // nothing removed since: no more lines
  });

  it('runs one sweep at a time, logs a failed one and tries again; close waits for the one in progress', async () => {
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const s = standIn([
      async () => {
        throw new Error('database away');
      },
      async () => {
        await slow;
        return { jobs: 1, files: 1 };
      },
    ]);
    sweeper = exportSweeper(s.store, s.log, { sweepSeconds: 0.03 });
    sweeper.start();
    await wait(150);
    expect(s.lines[0]).toMatchObject({ level: 'warn', msg: 'removing exports past their retention' });
    // The second sweep hangs: no third starts beside it.
    expect(s.calls).toHaveLength(2);
    expect(s.calls[0].at - s.calls[0].before.getTime()).toBeGreaterThanOrEqual(24 * 3_600_000); // default
    let closed = false;
    const closing = sweeper.close().then(() => (closed = true));
    await wait(20);
    expect(closed).toBe(false);
    release();
    await closing;
    expect(s.lines.at(-1)).toMatchObject({ level: 'info', obj: { jobs: 1, files: 1 } });
    await wait(100);
    expect(s.calls).toHaveLength(2); // closed: no more sweeps
  });

  it('reads EXPORT_RETENTION_HOURS with the other settings (default 24, at least 1 hour)', () => {
    expect(hardeningFromEnv({}).exportRetentionHours).toBe(24);
    expect(hardeningFromEnv({ EXPORT_RETENTION_HOURS: '168' }).exportRetentionHours).toBe(168);
    expect(hardeningFromEnv({ EXPORT_RETENTION_HOURS: '1.5' }).exportRetentionHours).toBe(1.5);
    for (const bad of ['0', '0.5', 'a day', '-3'])
      expect(() => hardeningFromEnv({ EXPORT_RETENTION_HOURS: bad })).toThrow(
        `EXPORT_RETENTION_HOURS must be a number of at least 1, not "${bad}".`,
      );
  });
});
