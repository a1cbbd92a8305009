/**
 * Exports made by a job any replica runs (a large CSV of cases, a specimen's PDF report): started with a
 * POST that answers 202 at once, followed with GET /exports/{id}, the file downloaded from its `file.url`
 * once it succeeded.
 */
import { Type, type Static } from '@sinclair/typebox';
import { JobJson } from './models.js';
import { stringEnum } from './shapes.js';

/** What an export makes: every matching cell as CSV (GET /cases.csv's file), or a specimen's PDF report. */
export const EXPORT_KINDS = ['cases.csv', 'report.pdf'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

export const ExportFile = Type.Object(
  {
    url: Type.String({ description: 'Where to download it (GET; the same account rules as the export).' }),
    name: Type.String({ description: 'The file name the download is offered under.' }),
    contentType: Type.String(),
    bytes: Type.Integer({ minimum: 0 }),
    sha256: Type.String({ description: 'Of the bytes: the file is stored content-addressed.' }),
  },
  {
    description:
      'The file the export made; removed with the export EXPORT_RETENTION_HOURS (default 24) after it finished.',
  },
);

/** An export is a job (JobJson's state, progress and attempts) whose result is a file. */
export const ExportJob = Type.Composite([
  Type.Omit(JobJson, ['kind', 'result']),
  Type.Object({
    kind: stringEnum(EXPORT_KINDS),
    specimen: Type.Optional(Type.String({ description: 'A report’s specimen.' })),
    revision: Type.Optional(
      Type.Integer({
        description: 'A report’s revision: the one asked for, or once made, the one it shows.',
      }),
    ),
    file: Type.Union([ExportFile, Type.Null()], { description: 'Set once the job succeeded.' }),
  }),
]);

/** An export's id: any text up to 100 characters, so a malformed id is simply not found (404). */
export const ExportParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: 'Export job id (a UUID).' }),
});

export type ExportJobJson = Static<typeof ExportJob>;
export type ExportFileJson = Static<typeof ExportFile>;
