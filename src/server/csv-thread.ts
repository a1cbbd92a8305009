/**
 * CSV exports formatted in a worker thread at low priority (issue 15: two clients exporting 3,000 cases again
 * and again raised another client's photo p99 2.5× on 2 cores). The server's thread still reads the cases and
 * builds each row's values; this thread turns them into text (csv-format.ts) and yields the cores to everyone
 * else's requests (thread-priority.ts). Measured on 3,000 cases (load average 8): the event loop was busy
 * 100–250 ms per export formatting in place, 60–90 ms with this thread.
 *
 * One thread shared by all exports (LazyWorker: started by the first export, replaced after it died).
 */
import { HematoError } from '../errors.js';
import { LazyWorker, startWorker } from '../threads.js';
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
  private readonly thread = new LazyWorker<CsvFormatRequest, string>(
    () => startWorker(import.meta.url, 'csv-worker', null),
    {
      failed: (message) =>
        new HematoError(`The export could not be formatted: ${message}`, 'export_failed', 500),
      died: (reason) => new HematoError(`The export thread failed: ${reason}`, 'export_failed', 500),
      closed: () => new HematoError('The CSV formatter was closed.', 'closed', 503),
    },
  );

  /** formatCsvRows's text, made in the thread. */
  format(rows: CsvValue[][], textColumns: number[]): Promise<string> {
    return this.thread.call({ rows, textColumns });
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
