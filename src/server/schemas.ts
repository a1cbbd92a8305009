/**
 * JSON schemas of API v1: they validate input, serialize output (unknown fields are dropped) and generate
 * the OpenAPI document. Shared ones are registered by $id and referenced as `<id>#`.
 */

/**
 * Review labels accepted besides the model's classes: `other` is a white cell of a type the model does not
 * know (basophil, blast, ...), `not_a_white_cell` an image or box that holds no white cell (red cell,
 * platelet, artefact, empty field).
 */
import { REVIEW_REASONS } from '../model/types.js';

export const EXTRA_REVIEW_LABELS = ['other', 'not_a_white_cell'] as const;

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

const probabilities = {
  type: 'object',
  description: 'Calibrated probability of every class, in the model card order.',
  additionalProperties: { type: 'number' },
} as const;

const reviewReasons = {
  type: 'array',
  description:
    'Why the result needs review: low_confidence (below the calibrated threshold), unfamiliar_cell (unlike every ' +
    'class the model learned: another cell type, debris), unfamiliar_image (stain, scale or optics unlike the ' +
    'training labs), damaged_image (decoder warnings, blank or transparent areas), no_cell. Empty when none applies.',
  items: { type: 'string', enum: [...REVIEW_REASONS] },
} as const;

const distance = {
  type: 'object',
  description:
    'How far the cell and its image lie from the training data, in units of the review threshold (above 1 is ' +
    'flagged). Absent for a model without familiarity checks.',
  required: ['cell', 'image'],
  properties: { cell: { type: 'number' }, image: { type: 'number' } },
} as const;

export const sharedSchemas = [
  {
    $id: 'Error',
    type: 'object',
    description: 'Every 4xx/5xx reply: a stable machine code and a message for a person.',
    required: ['error', 'message'],
    properties: {
      error: { type: 'string', examples: ['not_found'] },
      message: { type: 'string' },
    },
  },
  {
    $id: 'Box',
    type: 'object',
    required: ['x', 'y', 'width', 'height', 'score'],
    properties: {
      x: { type: 'number' },
      y: { type: 'number' },
      width: { type: 'number' },
      height: { type: 'number' },
      score: { type: 'number', description: '0..1, how sure the locator is that this is one white cell.' },
    },
  },
  {
    $id: 'Cell',
    type: 'object',
    required: ['box', 'label', 'confidence', 'probabilities', 'needsReview', 'reviewReasons'],
    properties: {
      box: { $ref: 'Box#' },
      label: { type: 'string' },
      confidence: { type: 'number' },
      probabilities,
      needsReview: { type: 'boolean', description: 'True when any review reason applies.' },
      reviewReasons,
      distance,
    },
  },
  {
    $id: 'Review',
    type: 'object',
    description: "A reviewer's label, kept beside the model's prediction (which it never replaces).",
    required: ['label', 'reviewer', 'note', 'reviewedAt'],
    properties: {
      label: { type: 'string' },
      reviewer: { type: 'string' },
      note: { type: 'string' },
      reviewedAt: { type: 'string', format: 'date-time' },
    },
  },
  {
    $id: 'Case',
    type: 'object',
    description: 'One analysed image and what the model said of it.',
    required: [
      'id',
      'file',
      'createdAt',
      'label',
      'confidence',
      'probabilities',
      'needsReview',
      'reviewReasons',
      'cells',
      'heatmapUrl',
      'imageUrl',
      'width',
      'height',
      'model',
      'review',
    ],
    properties: {
      id: { type: 'string', format: 'uuid' },
      file: { type: 'string', description: 'File name as uploaded.' },
      createdAt: { type: 'string', format: 'date-time' },
      label: {
        type: ['string', 'null'],
        description: 'Predicted class (the most confident cell); null when no white cell was found.',
      },
      confidence: { type: 'number' },
      probabilities,
      needsReview: {
        type: 'boolean',
        description: 'True when any review reason applies to the image or to any of its cells.',
      },
      reviewReasons: { ...reviewReasons, description: 'Its own reasons and every reason of its cells.' },
      cells: { type: 'array', items: { $ref: 'Cell#' } },
      message: { type: 'string', description: 'Why no label was given, when label is null.' },
      heatmapUrl: { type: ['string', 'null'], description: 'PNG overlay of the class activation map.' },
      imageUrl: { type: 'string' },
      width: { type: 'integer' },
      height: { type: 'integer' },
      model: {
        type: 'object',
        required: ['name', 'version', 'tta'],
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          tta: {
            type: 'boolean',
            description:
              "Test-time augmentation: each cell's 8 flips and turns averaged (probabilities and needsReview " +
              "then follow the card's testTimeAugmentation calibration).",
          },
        },
      },
      review: { anyOf: [{ $ref: 'Review#' }, { type: 'null' }], description: 'The latest review, if any.' },
    },
  },
  {
    $id: 'FileError',
    type: 'object',
    description: 'A file of a batch that could not be analysed (no case was stored for it).',
    required: ['file', 'error', 'message'],
    properties: {
      file: { type: 'string' },
      error: { type: 'string', examples: ['corrupt_image'] },
      message: { type: 'string' },
    },
  },
  {
    $id: 'Domain',
    type: 'object',
    description:
      "How far a request's images lie from the labs the model learned from (a model with familiarity checks).",
    required: ['n', 'score', 'unfamiliarShare', 'unfamiliar', 'summary'],
    properties: {
      n: { type: 'integer' },
      score: { type: 'number', description: 'Median image distance; 1 is the per-image threshold.' },
      unfamiliarShare: { type: 'number', description: 'Share of the images beyond the per-image threshold.' },
      unfamiliar: { type: 'boolean', description: 'The batch as a whole looks unlike the training labs.' },
      summary: { type: 'string', description: 'The same in a plain sentence.' },
    },
  },
  {
    $id: 'Differential',
    type: 'object',
    description:
      'White-cell differential over every cell of every image of the request (an image analysed without ' +
      'cells counts its label once). Every class of the model is counted; white-cell percentages sum to 100 ' +
      'unless total is 0; erythroblasts and platelets are counted beside them, per 100 white cells.',
    required: ['counts', 'percentages', 'total', 'per100White'],
    properties: {
      counts: {
        type: 'object',
        description: 'Cells of every class the model knows.',
        additionalProperties: { type: 'integer' },
      },
      percentages: {
        type: 'object',
        description: 'Share of the white cells, per white-cell class.',
        additionalProperties: { type: 'number' },
      },
      total: { type: 'integer', description: 'White cells counted (erythroblasts and platelets are not).' },
      per100White: {
        type: 'object',
        description: 'Erythroblasts and platelets (when the model knows them) per 100 white cells.',
        additionalProperties: { type: 'number' },
      },
    },
  },
];

const errors = {
  '4xx': { $ref: 'Error#' },
  '5xx': { $ref: 'Error#' },
} as const;

const caseIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: UUID_PATTERN, description: 'Case id (a UUID).' } },
} as const;

const caseFilter = {
  label: { type: 'string', minLength: 1, maxLength: 200, description: "The model's predicted label." },
  reviewed: { type: 'boolean', description: 'true: reviewed at least once; false: never reviewed.' },
  needsReview: {
    type: 'boolean',
    description: 'true: the image or any of its cells needs review; false: none of them does.',
  },
  file: {
    type: 'string',
    minLength: 1,
    maxLength: 200,
    description: 'Part of the file name, any case (`smear-12` finds `Smear-12a.jpg`).',
  },
  sort: {
    type: 'string',
    enum: ['newest', 'oldest', 'least-confident', 'most-confident'],
    default: 'newest',
    description: 'Order of the cases; least-confident puts the doubtful first.',
  },
} as const;

const binary = { type: 'string', format: 'binary' } as const;

export function routeSchemas(opts: { classes: string[]; maxFiles: number; maxFileBytes: number }) {
  return {
    health: {
      summary: 'Liveness and the loaded model',
      tags: ['service'],
      response: {
        200: {
          description: 'The service is up',
          type: 'object',
          required: ['status', 'model'],
          properties: {
            status: { type: 'string', enum: ['ok'] },
            model: {
              type: 'object',
              required: ['name', 'version', 'classes', 'tta'],
              properties: {
                name: { type: 'string' },
                version: { type: 'string' },
                classes: { type: 'array', items: { type: 'string' } },
                tta: {
                  type: 'boolean',
                  description: 'The model is calibrated for test-time augmentation (predict ?tta=true).',
                },
              },
            },
          },
        },
        ...errors,
      },
    },
    model: {
      summary: 'The model card (model.json) of the loaded model',
      tags: ['service'],
      response: {
        200: {
          description: 'model.json of the loaded model',
          type: 'object',
          required: ['name', 'version', 'classes'],
          additionalProperties: true,
          properties: {
            name: { type: 'string' },
            version: { type: 'string' },
            classes: { type: 'array', items: { type: 'string' } },
            reviewThreshold: { type: 'number' },
            inUse: {
              type: 'object',
              description:
                "How this server runs the model: with test-time augmentation (each cell's 8 flips and turns " +
                'averaged) or not, and the review threshold calibrated for that (predictions are flagged below it).',
              required: ['tta', 'reviewThreshold'],
              properties: { tta: { type: 'boolean' }, reviewThreshold: { type: 'number' } },
            },
          },
        },
        ...errors,
      },
    },
    openapi: {
      summary: 'This OpenAPI document',
      tags: ['service'],
      response: {
        200: { description: 'OpenAPI 3.1', type: 'object', additionalProperties: true },
        ...errors,
      },
    },
    predict: {
      summary: 'Analyse 1–50 images and store each as a case',
      description:
        `multipart/form-data with the files in the field \`images\` (at most ${opts.maxFiles} files of ` +
        `${Math.round(opts.maxFileBytes / (1024 * 1024))} MB each). A file that cannot be analysed gets ` +
        '{file, error, message} in `cases` and the others are processed; if none can be, the reply is 4xx. ' +
        "`?tta=true` averages each cell's 8 flips and turns (more accurate, 8× the network time; the server's " +
        'default is in GET /model `inUse.tta`).',
      tags: ['cases'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { tta: { type: 'boolean', description: 'Test-time augmentation for this request.' } },
      },
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
        200: {
          description: 'One entry per file, in upload order: a case, or why that file was refused',
          type: 'object',
          required: ['cases', 'differential'],
          properties: {
            cases: { type: 'array', items: { anyOf: [{ $ref: 'Case#' }, { $ref: 'FileError#' }] } },
            differential: { $ref: 'Differential#' },
            domain: { $ref: 'Domain#' },
          },
        },
        ...errors,
      },
    },
    listCases: {
      summary: 'Stored cases, newest first',
      tags: ['cases'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...caseFilter,
          limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
          offset: { type: 'integer', minimum: 0, default: 0 },
        },
      },
      response: {
        200: {
          description: 'A page of cases',
          type: 'object',
          required: ['cases', 'total'],
          properties: {
            cases: { type: 'array', items: { $ref: 'Case#' } },
            total: { type: 'integer', description: 'Matching cases, ignoring limit and offset.' },
          },
        },
        ...errors,
      },
    },
    casesCsv: {
      summary: 'Every matching case as CSV (one row per located cell, one column per class probability)',
      tags: ['cases'],
      querystring: { type: 'object', additionalProperties: false, properties: { ...caseFilter } },
      response: {
        200: { description: 'RFC 4180 CSV, UTF-8', content: { 'text/csv': { schema: { type: 'string' } } } },
        ...errors,
      },
    },
    getCase: {
      summary: 'One case with its full review history',
      tags: ['cases'],
      params: caseIdParams,
      response: {
        200: {
          description: 'The case',
          allOf: [{ $ref: 'Case#' }],
          type: 'object',
          required: ['reviews'],
          properties: {
            reviews: { type: 'array', items: { $ref: 'Review#' }, description: 'Oldest first.' },
          },
        },
        ...errors,
      },
    },
    caseImage: {
      summary: 'The original image bytes as uploaded',
      tags: ['cases'],
      params: caseIdParams,
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
      summary: 'The class activation map overlay (PNG)',
      tags: ['cases'],
      params: caseIdParams,
      response: {
        200: { description: 'PNG', content: { 'image/png': { schema: binary } } },
        ...errors,
      },
    },
    reviewCase: {
      summary: "Record a reviewer's label beside the model's prediction",
      description:
        `reviewLabel is one of the model's classes, \`${EXTRA_REVIEW_LABELS[0]}\` (a white cell of a type ` +
        `the model does not know) or \`${EXTRA_REVIEW_LABELS[1]}\`. Each review is appended to the case's ` +
        'history; the latest is shown as `review`.',
      tags: ['cases'],
      params: caseIdParams,
      body: {
        type: 'object',
        required: ['reviewLabel', 'reviewer'],
        properties: {
          reviewLabel: { type: 'string', enum: [...opts.classes, ...EXTRA_REVIEW_LABELS] },
          reviewer: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
          note: { type: ['string', 'null'], maxLength: 4000 },
        },
      },
      response: { 200: { $ref: 'Case#' }, ...errors },
    },
    deleteCase: {
      summary: 'Delete a case (its image file too, unless another case has the same bytes)',
      tags: ['cases'],
      params: caseIdParams,
      response: { 204: { description: 'Deleted', type: 'null' }, ...errors },
    },
  };
}

export type RouteSchemas = ReturnType<typeof routeSchemas>;
