/**
 * The route schemas of API v1, built from the shapes in src/api: they validate input, serialize output
 * (unknown fields are dropped) and generate the OpenAPI document. Shared shapes are registered by $id
 * (`sharedSchemas`) and referenced as `<id>#`.
 */
import { Type } from '@sinclair/typebox';
import {
  Case,
  CaseFilterQuery,
  CaseIdParams,
  CaseList,
  CaseListQuery,
  CaseWithReviews,
  CellParams,
  DeleteCaseBody,
  ErrorReply,
  EXTRA_REVIEW_LABELS,
  Health,
  ModelInfo,
  NewSpecimen,
  PredictQuery,
  PredictResponse,
  Ready,
  RestoreParams,
  ReviewBody,
  SignBody,
  Signoff,
  Specimen,
  SpecimenDetail,
  SpecimenEdit,
  SpecimenList,
  SpecimenListQuery,
  SpecimenParams,
} from '../api/index.js';
import { ref } from '../api/shapes.js';

export { sharedSchemas } from '../api/index.js';

const errors = { '4xx': ref(ErrorReply), '5xx': ref(ErrorReply) };

const binary = { type: 'string', format: 'binary' } as const;

/** A shape with the description its route gives it in the OpenAPI document. */
function described<T extends object>(description: string, schema: T): T {
  return { description, ...schema };
}

export function routeSchemas(opts: { classes: string[]; maxFiles: number; maxFileBytes: number }) {
  return {
    health: {
      operationId: 'getHealth',
      summary: 'Liveness and the loaded model',
      tags: ['service'],
      response: { 200: described('The service is up', Health), ...errors },
    },
    ready: {
      operationId: 'getReady',
      summary: 'Readiness: database writable, free disk space, model loaded',
      description:
        'For load balancers and orchestrators: 200 when this server can take work, 503 (same shape) when a ' +
        'check fails. GET /health only says the process is alive.',
      tags: ['service'],
      response: {
        200: described('Every check passed', Ready),
        503: described('A check failed: see `checks`', Ready),
        '4xx': ref(ErrorReply),
      },
    },
    model: {
      operationId: 'getModel',
      summary: 'The model card (model.json) of the loaded model',
      tags: ['service'],
      response: { 200: described('model.json of the loaded model', ModelInfo), ...errors },
    },
    openapi: {
      operationId: 'getOpenApi',
      summary: 'This OpenAPI document',
      tags: ['service'],
      response: {
        200: Type.Unsafe<object>({
          description: 'OpenAPI 3.1',
          type: 'object',
          additionalProperties: true,
        }),
        ...errors,
      },
    },
    predict: {
      operationId: 'predict',
      summary: 'Analyse 1–50 images and store each as a case',
      description:
        `multipart/form-data with the files in the field \`images\` (at most ${opts.maxFiles} files of ` +
        `${Math.round(opts.maxFileBytes / (1024 * 1024))} MB each). A file that cannot be analysed gets ` +
        '{file, error, message} in `cases` and the others are processed; if none can be, the reply is 4xx. ' +
        "`?tta=true` averages each cell's 8 flips and turns (more accurate, 8× the network time; the server's " +
        'default is in GET /model `inUse.tta`). `?specimen=<id>` stores the images in that specimen (created ' +
        'first with POST /specimens; an unknown one is refused with 404 before the upload is read).',
      tags: ['cases'],
      querystring: PredictQuery,
      body: {
        content: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['images'],
              properties: {
                images: { type: 'array', minItems: 1, maxItems: opts.maxFiles, items: binary },
              },
            },
          },
        },
      },
      response: {
        200: described(
          'One entry per file, in upload order: a case, or why that file was refused',
          PredictResponse,
        ),
        ...errors,
      },
    },
    listCases: {
      operationId: 'listCases',
      summary: 'Stored cases, newest first',
      tags: ['cases'],
      querystring: CaseListQuery,
      response: { 200: described('A page of cases', CaseList), ...errors },
    },
    casesCsv: {
      operationId: 'exportCasesCsv',
      summary: 'Every matching case as CSV (one row per located cell, one column per class probability)',
      tags: ['cases'],
      querystring: CaseFilterQuery,
      response: {
        200: { description: 'RFC 4180 CSV, UTF-8', content: { 'text/csv': { schema: { type: 'string' } } } },
        ...errors,
      },
    },
    getCase: {
      operationId: 'getCase',
      summary: 'One case with its full review history',
      tags: ['cases'],
      params: CaseIdParams,
      response: { 200: described('The case', CaseWithReviews), ...errors },
    },
    caseImage: {
      operationId: 'getCaseImage',
      summary: 'The original image bytes as uploaded',
      tags: ['cases'],
      params: CaseIdParams,
      response: {
        200: {
          description: 'The uploaded file',
          content: {
            'image/jpeg': { schema: binary },
            'image/png': { schema: binary },
            'image/tiff': { schema: binary },
            'image/webp': { schema: binary },
            'image/bmp': { schema: binary },
          },
        },
        ...errors,
      },
    },
    caseHeatmap: {
      operationId: 'getCaseHeatmap',
      summary: 'The class activation map overlay (PNG)',
      tags: ['cases'],
      params: CaseIdParams,
      response: {
        200: { description: 'PNG', content: { 'image/png': { schema: binary } } },
        ...errors,
      },
    },
    reviewCase: {
      operationId: 'reviewCase',
      summary: "Record a reviewer's label beside the model's prediction",
      description:
        `reviewLabel is one of the model's classes, \`${EXTRA_REVIEW_LABELS[0]}\` (a white cell of a type ` +
        `the model does not know) or \`${EXTRA_REVIEW_LABELS[1]}\`. Each review is appended to the case's ` +
        'history; the latest is shown as `review`.',
      tags: ['cases'],
      params: CaseIdParams,
      body: ReviewBody(opts.classes),
      response: { 200: ref(Case), ...errors },
    },
    reviewCell: {
      operationId: 'reviewCell',
      summary: "Record a reviewer's label for one cell of a case",
      description:
        'Confirms (the model’s label) or corrects one cell; the cell then no longer needs review, and the ' +
        'image’s and its specimen’s flags follow from their cells. Appended to the case’s review history.',
      tags: ['cases'],
      params: CellParams,
      body: ReviewBody(opts.classes),
      response: { 200: ref(Case), ...errors },
    },
    cellCrop: {
      operationId: 'cellCrop',
      summary: 'One cell’s crop (PNG, at most 160 px), the square the classifier saw with a margin',
      tags: ['cases'],
      params: CellParams,
      response: {
        200: { description: 'PNG', content: { 'image/png': { schema: binary } } },
        ...errors,
      },
    },
    createSpecimen: {
      operationId: 'createSpecimen',
      summary: "Create a specimen (one patient's slide) to upload images into",
      tags: ['specimens'],
      body: NewSpecimen,
      response: { 201: described('The specimen', ref(Specimen)), ...errors },
    },
    updateSpecimen: {
      operationId: 'updateSpecimen',
      summary: "Change a specimen's source, note or target count",
      description:
        'Only the fields sent change; the id stays. A change makes the report a new revision (a draft until ' +
        'signed), since the report shows these fields; sending the values it has already changes nothing.',
      tags: ['specimens'],
      params: SpecimenParams,
      body: SpecimenEdit,
      response: { 200: described('The specimen', ref(Specimen)), ...errors },
    },
    deleteSpecimen: {
      operationId: 'deleteSpecimen',
      summary:
        'Delete a specimen without images, with a reason (admins only): hidden, not removed; restorable',
      description:
        'Soft delete, as for a case. 409 while the specimen holds an image that is not deleted: a slide’s ' +
        'images are results filed under its patient, so they are never dropped or orphaned with it (delete ' +
        'them first). POST /specimens/{id}/restore brings it back.',
      tags: ['specimens'],
      params: SpecimenParams,
      body: DeleteCaseBody,
      response: { 204: Type.Null({ description: 'Deleted' }), ...errors },
    },
    restoreSpecimen: {
      operationId: 'restoreSpecimen',
      summary: 'Restore a deleted specimen (admins only)',
      tags: ['specimens'],
      params: SpecimenParams,
      response: { 200: described('The specimen, back in lists', ref(Specimen)), ...errors },
    },
    listSpecimens: {
      operationId: 'listSpecimens',
      summary: 'Specimens, newest first',
      tags: ['specimens'],
      querystring: SpecimenListQuery,
      response: { 200: described('A page of specimens', SpecimenList), ...errors },
    },
    getSpecimen: {
      operationId: 'getSpecimen',
      summary: 'A specimen, its differential, progress, cells and review queue',
      tags: ['specimens'],
      params: SpecimenParams,
      response: { 200: described('The specimen', SpecimenDetail), ...errors },
    },
    specimenCsv: {
      operationId: 'specimenCsv',
      summary: 'Every cell of the specimen as CSV (the columns of cases.csv, specimen included)',
      tags: ['specimens'],
      params: SpecimenParams,
      response: {
        200: { description: 'RFC 4180 CSV, UTF-8', content: { 'text/csv': { schema: { type: 'string' } } } },
        ...errors,
      },
    },
    signSpecimen: {
      operationId: 'signSpecimen',
      summary: 'Sign the report as it is now: the revision is frozen (its PDF stored)',
      description:
        'Later uploads or reviews make a new revision (a draft until signed). 409 when the report as it is ' +
        'now is signed already.',
      tags: ['specimens'],
      params: SpecimenParams,
      body: SignBody,
      response: { 201: described('The signed revision', Signoff), ...errors },
    },
    deleteCase: {
      operationId: 'deleteCase',
      summary: 'Delete a case, with a reason (admins only): hidden, not removed; restorable',
      description:
        'Soft delete: the case leaves every list, export and specimen, its bytes and reviews stay, and the ' +
        'audit trail records who deleted it and why. POST /cases/{id}/restore brings it back.',
      tags: ['cases'],
      params: CaseIdParams,
      body: DeleteCaseBody,
      response: { 204: Type.Null({ description: 'Deleted' }), ...errors },
    },
    restoreCase: {
      operationId: 'restoreCase',
      summary: 'Restore a deleted case (admins only)',
      tags: ['cases'],
      params: RestoreParams,
      response: { 200: described('The case, back in lists', ref(Case)), ...errors },
    },
  };
}

export type RouteSchemas = ReturnType<typeof routeSchemas>;
