/**
 * Export jobs: a large CSV of cases and a specimen's PDF report, made by whichever runner (replica) takes the
 * job, off the request, and stored content-addressed (store.putExportFile) so any replica serves the file.
 * The same CSV writer (cases-csv.ts) and report source (specimens.ts reportSource) as the synchronous routes,
 * so a file made here is the one GET /cases.csv or GET /specimens/{id}/report.pdf would have sent.
 */
import type { ExportKind } from '../api/index.js';
import type { HematoVision } from '../pipeline.js';
import type { SpecimenReport } from '../report/specimen-pdf.js';
import { casesCsvStream } from './cases-csv.js';
import type { CsvFormat } from './csv-thread.js';
import type { CellCrops } from './cell-crops.js';
import type { JobContext, JobQueue } from './jobs/index.js';
import { reportFileName, reportPdf } from './routes/specimen-report.js';
import { reportSource } from './specimens.js';
import type { CaseFilter, CaseStore } from './store/index.js';

/** The job kind of each export (pg-boss queue names allow no dots). */
export const EXPORT_JOB_KINDS: Record<ExportKind, string> = {
  'cases.csv': 'export-cases',
  'report.pdf': 'export-report',
};

/** What an export holds is whose: null, every clinic's (a reviewer's or admin's export). */
interface Owned {
  clinic: string | null;
}

export type ExportInput =
  | ({ kind: 'cases.csv'; filter: CaseFilter } & Owned)
  | ({ kind: 'report.pdf'; specimen: string; revision?: number } & Owned);

/** An export job's result: its file, stored by sha256. */
export interface ExportResult {
  sha256: string;
  bytes: number;
  contentType: string;
  name: string;
  /** A report's revision. */
  revision?: number;
}

/** The export kind of a job kind, or undefined for a job that is not an export. */
export function exportKindOf(jobKind: string): ExportKind | undefined {
  return (Object.keys(EXPORT_JOB_KINDS) as ExportKind[]).find((k) => EXPORT_JOB_KINDS[k] === jobKind);
}

export interface ExportDeps {
  store: CaseStore;
  /** Its card names the model in a report (read when the job runs, as a synchronous report does). */
  vision: HematoVision;
  crops: CellCrops;
  /** A report's PDF bytes, off the event loop (the server's report thread). */
  render(report: SpecimenReport): Promise<Buffer>;
  /** CSV rows to text, off the event loop (the server's CSV thread). */
  csv: CsvFormat;
  /** Longest export run in seconds (default 300); on PostgreSQL also how long a dead replica holds one. */
  limitSeconds?: number;
}

/** Cases between two progress writes (each one a database write). */
const PROGRESS_EVERY = 200;

export function registerExports(jobs: JobQueue, deps: ExportDeps): void {
  const expireSeconds = deps.limitSeconds ?? 300;
  jobs.register(EXPORT_JOB_KINDS['cases.csv'], {
    expireSeconds,
    handler: (input, ctx) => casesCsv(deps, input as ExportInput & { kind: 'cases.csv' }, ctx),
  });
  jobs.register(EXPORT_JOB_KINDS['report.pdf'], {
    expireSeconds,
    handler: (input, ctx) => specimenReport(deps, input as ExportInput & { kind: 'report.pdf' }, ctx),
  });
}

async function casesCsv(
  { store, vision, csv: formatter }: ExportDeps,
  input: { filter: CaseFilter },
  ctx: JobContext,
): Promise<ExportResult> {
  const { total } = await store.list({ ...input.filter, limit: 1, offset: 0 });
  await ctx.progress(0, `Writing ${total} case${total === 1 ? '' : 's'}`);
  const csv = await casesCsvStream(store, vision.card.classes, input.filter, {
    onCase: (n) => {
      if (n % PROGRESS_EVERY === 0)
        void ctx.progress((0.95 * n) / Math.max(total, n), `${n} of ${total} cases`);
    },
    formatter,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of csv) {
    if (ctx.signal.aborted) {
      csv.destroy();
      throw ctx.signal.reason;
    }
    chunks.push(Buffer.from(chunk as Buffer | string));
  }
  return stored(store, ctx, Buffer.concat(chunks), {
    contentType: 'text/csv; charset=utf-8',
    name: 'hematovision-cases.csv',
  });
}

async function specimenReport(
  { store, vision, crops, render }: ExportDeps,
  input: { specimen: string; revision?: number },
  ctx: JobContext,
): Promise<ExportResult> {
  const s = await store.getSpecimen(input.specimen);
  if (!s || s.deleted) throw new Error(`Specimen ${JSON.stringify(input.specimen)} was deleted meanwhile.`);
  await ctx.progress(0.1, 'Reading the specimen');
  const source = await reportSource(store, vision.card.classes, crops, vision.card, s, input.revision);
  if (!source) throw new Error(`Specimen ${JSON.stringify(s.id)} has no signed revision ${input.revision}.`);
  await ctx.progress(0.5, 'Rendering the PDF');
  const { pdf, name } = await reportPdf(source, render);
  return stored(store, ctx, pdf, {
    contentType: 'application/pdf',
    name: reportFileName(name),
    revision: name.revision,
  });
}

async function stored(
  store: CaseStore,
  ctx: JobContext,
  bytes: Buffer,
  file: Omit<ExportResult, 'sha256' | 'bytes'>,
): Promise<ExportResult> {
  await ctx.progress(0.97, 'Storing the file');
  // ctx.job is the row as this runner claimed it: its owner is this runner.
  const sha = await store.putExportFile(ctx.job.id, ctx.job.owner ?? '', bytes);
  return { sha256: sha, bytes: bytes.length, ...file };
}
