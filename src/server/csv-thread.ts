/**
 * CSV exports formatted in a worker thread at low priority (issue 15: two clients exporting 3,000 cases again
 * and again raised another client's photo p99 2.5× on 2 cores). The server's thread still reads the cases and
 * builds each row's values; this thread turns them into text (csv-format.ts) and yields the cores to everyone
 * else's requests (thread-priority.ts). Measured on 3,000 cases (load average 8): the event loop was busy
 * 100–250 ms per export formatting in place, 60–90 ms with this thread.
 *
 * One thread, started by the first export (a server that never exports pays nothing), shared by all exports,
 * whose batches interleave on its loop. A thread that died is replaced on the next batch.
 */
import { HematoError } from '../errors.js';
import { startWorker, WorkerCalls } from '../threads.js';
import type { CsvValue } from './csv-format.js';

export interface CsvFormatRequest {
  rows: CsvValue[][];
  textColumns: number[];
}

/** What cases-csv.ts needs: rows to text. */
export interface CsvFormat {
  format(rows: CsvValue[][], textColumns: number[]): Promise<string>;
}

export class CsvFormatter implements CsvFormat {
  private calls: WorkerCalls<CsvFormatRequest, string> | undefined;
  private closed = false;

  /** formatCsvRows's text, made in the thread. */
  async format(rows: CsvValue[][], textColumns: number[]): Promise<string> {
    if (this.closed) throw new HematoError('The CSV formatter was closed.', 'closed', 503);
    return this.thread().call({ rows, textColumns });
  }

  private thread(): WorkerCalls<CsvFormatRequest, string> {
    if (this.calls) return this.calls;
    const worker = startWorker(import.meta.url, 'csv-worker', null);
    const calls = new WorkerCalls<CsvFormatRequest, string>(worker, {
      failed: (message) =>
        new HematoError(`The export could not be formatted: ${message}`, 'export_failed', 500),
      died: (reason) => new HematoError(`The export thread failed: ${reason}`, 'export_failed', 500),
      // An idle thread must not keep a CLI or a test process alive.
      unrefWhenIdle: true,
    });
    // Its calls in flight fail (WorkerCalls); the next batch starts a new thread.
    worker.on('exit', () => {
      if (this.calls === calls) this.calls = undefined;
    });
    this.calls = calls;
    return calls;
  }

  async close(): Promise<void> {
    this.closed = true;
    const calls = this.calls;
    this.calls = undefined;
    await calls?.close(new HematoError('The CSV formatter was closed.', 'closed', 503));
  }
}
