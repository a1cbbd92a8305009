// The thread of a CsvFormatter (csv-thread.ts): formats rows of CSV exports, at low priority.
import { parentPort } from 'node:worker_threads';
import { answerCalls } from '../threads.js';
import { lowerThreadPriority } from '../thread-priority.js';
import { formatCsvRows } from './csv-format.js';
import type { CsvFormatRequest } from './csv-thread.js';

// Before its first call: an export yields the cores to the requests of everyone else.
await lowerThreadPriority();
answerCalls<CsvFormatRequest, string>(parentPort!, ({ rows, textColumns }) =>
  formatCsvRows(rows, textColumns),
);
