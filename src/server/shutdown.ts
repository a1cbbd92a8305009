/**
 * Graceful stop on SIGTERM/SIGINT within 10 s: stop listening, drop uploads still arriving, let requests being
 * answered finish for a while, then close the model's worker and the store (the app's onClose) and exit.
 */
import type { FastifyInstance } from 'fastify';
import type { HematoVision } from '../pipeline.js';

export interface ShutdownTimes {
  /** Requests already received may finish within this (ms). */
  graceMs: number;
  /** Whatever happens, the process exits by then (ms). */
  hardMs: number;
}

export const SHUTDOWN_TIMES: ShutdownTimes = { graceMs: 7_000, hardMs: 9_500 };

const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, ms).unref());

export function installShutdown(app: FastifyInstance, vision: HematoVision, times = SHUTDOWN_TIMES): void {
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    setTimeout(() => {
      app.log.error('shutdown took too long: exiting now');
      process.exit(1);
    }, times.hardMs).unref();
    app.log.info(`${signal}: shutting down`);
    let clean = true;
    try {
      // Stops listening and closes idle connections; resolves once requests in flight are answered and
      // the onClose hook has closed the store.
      const closed = app.close();
      const aborted = app.abortUploads();
      if (aborted > 0) app.log.info(`aborted ${aborted} upload(s) in progress`);
      const done = await Promise.race([closed.then(() => true), delay(times.graceMs).then(() => false)]);
      if (!done) {
        clean = false;
        app.log.warn('requests still running at the end of the grace period: closing their connections');
        app.server.closeAllConnections();
        await Promise.race([closed, delay(1_000)]);
      }
      await Promise.race([vision.close(), delay(1_000)]);
    } catch (err) {
      clean = false;
      app.log.error({ err }, 'shutdown failed');
    }
    process.exit(clean ? 0 : 1);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
