/** The shapes of a stored case and of the routes that read and review cases. */
import { Type, type Static } from '@sinclair/typebox';
import { REVIEW_REASONS } from '../model/types.js';
import { CASE_SORTS, EXTRA_REVIEW_LABELS, UUID_PATTERN } from './constants.js';
import { accountlessActor, nullableString, numberMap, pageQuery, ref, stringEnum } from './shapes.js';

const probabilities = () =>
  numberMap({ description: 'Calibrated probability of every class, in the model card order.' });

const reviewReasons = (description: string) => Type.Array(stringEnum(REVIEW_REASONS), { description });

const REASONS_TEXT =
  'Why the result needs review: low_confidence (below the calibrated threshold), unfamiliar_cell (unlike every ' +
  'class the model learned: another cell type, debris), unfamiliar_image (stain, scale or optics unlike the ' +
  'training labs), damaged_image (decoder warnings, blank or transparent areas), no_cell. Empty when none applies.';

export const Review = Type.Object(
  {
    label: Type.String(),
    reviewer: Type.String(),
    note: Type.String(),
    reviewedAt: Type.String({ format: 'date-time' }),
    cell: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'The cell it reviews (0-based; image-level reviews of older clients are cell 0). In histories.',
      }),
    ),
  },
  {
    $id: 'Review',
    description: "A reviewer's label, kept beside the model's prediction (which it never replaces).",
  },
);

export const Box = Type.Object(
  {
    x: Type.Number(),
    y: Type.Number(),
    width: Type.Number(),
    height: Type.Number(),
    score: Type.Number({ description: '0..1, how sure the locator is that this is one white cell.' }),
  },
  { $id: 'Box' },
);

export const Cell = Type.Object(
  {
    box: ref(Box),
    label: Type.String(),
    confidence: Type.Number(),
    probabilities: probabilities(),
    needsReview: Type.Boolean({
      description:
        'True while the model flagged the cell (reviewReasons) and no reviewer has confirmed or corrected it.',
    }),
    reviewReasons: reviewReasons(REASONS_TEXT),
    review: Type.Optional(
      Type.Unsafe<Static<typeof Review> | null>({
        anyOf: [{ $ref: 'Review#' }, { type: 'null' }],
        description: "The cell's latest review (POST /cases/{id}/cells/{index}/review), if any.",
      }),
    ),
    distance: Type.Optional(
      Type.Object(
        { cell: Type.Number(), image: Type.Number() },
        {
          description:
            'How far the cell and its image lie from the training data, in units of the review threshold ' +
            '(above 1 is flagged). Absent for a model without familiarity checks.',
        },
      ),
    ),
  },
  { $id: 'Cell' },
);

export const CaseModel = Type.Object({
  name: Type.String(),
  version: Type.String(),
  sha256: nullableString({
    description:
      'sha256 of the model file that analysed it (a model version, GET /admin/models); null for cases ' +
      'stored before versions were recorded.',
  }),
  tta: Type.Boolean({
    description:
      "Test-time augmentation: each cell's 8 flips and turns averaged (probabilities and needsReview " +
      "then follow the card's testTimeAugmentation calibration).",
  }),
});

export const Case = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    file: Type.String({ description: 'File name as uploaded.' }),
    createdAt: Type.String({ format: 'date-time' }),
    label: nullableString({
      description: 'Predicted class (the most confident cell); null when no white cell was found.',
    }),
    confidence: Type.Number(),
    probabilities: probabilities(),
    needsReview: Type.Boolean({
      description:
        'True while a cell the model flagged is unreviewed, or the image is flagged for itself (no cell, ' +
        'damaged) and nobody has reviewed it: the flag follows from its cells.',
    }),
    reviewReasons: reviewReasons('Why the model flagged it: its own reasons and every reason of its cells.'),
    cells: Type.Array(ref(Cell)),
    message: Type.Optional(Type.String({ description: 'Why no label was given, when label is null.' })),
    heatmapUrl: nullableString({ description: 'PNG overlay of the class activation map.' }),
    imageUrl: Type.String(),
    width: Type.Integer(),
    height: Type.Integer(),
    model: CaseModel,
    review: Type.Unsafe<Static<typeof Review> | null>({
      anyOf: [{ $ref: 'Review#' }, { type: 'null' }],
      description: 'The latest review of any of its cells, if any.',
    }),
    specimen: Type.Optional(nullableString({ description: 'The specimen the image was uploaded into.' })),
    clinic: Type.Optional(
      nullableString({ description: 'The clinic that uploaded it, if a clinic account.' }),
    ),
  },
  { $id: 'Case', description: 'One analysed image and what the model said of it.' },
);

/** A file of a batch that could not be analysed. */
export const FileError = Type.Object(
  {
    file: Type.String(),
    error: Type.String({ examples: ['corrupt_image'] }),
    message: Type.String(),
  },
  {
    $id: 'FileError',
    description: 'A file of a batch that could not be analysed (no case was stored for it).',
  },
);

/** GET /cases/:id: the case and its whole review history. */
const reviews = Type.Object(
  { reviews: Type.Array(ref(Review), { description: 'Oldest first.' }) },
  { allOf: [{ $ref: 'Case#' }] },
);
export const CaseWithReviews = Type.Unsafe<Static<typeof Case> & Static<typeof reviews>>(reviews);

export const CaseList = Type.Object({
  cases: Type.Array(ref(Case)),
  total: Type.Integer({ description: 'Matching cases, ignoring limit and offset.' }),
});

export const CaseIdParams = Type.Object({
  id: Type.String({ pattern: UUID_PATTERN, description: 'Case id (a UUID).' }),
});

const caseFilter = {
  label: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: "The model's predicted label." }),
  ),
  reviewed: Type.Optional(
    Type.Boolean({ description: 'true: reviewed at least once; false: never reviewed.' }),
  ),
  needsReview: Type.Optional(
    Type.Boolean({
      description: 'true: the image or any of its cells needs review; false: none of them does.',
    }),
  ),
  file: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Part of the file name, any case (`smear-12` finds `Smear-12a.jpg`).',
    }),
  ),
  specimen: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'The images of this specimen (its id, any case).',
    }),
  ),
  sort: Type.Optional(
    stringEnum(CASE_SORTS, {
      default: 'newest',
      description: 'Order of the cases; least-confident puts the doubtful first.',
    }),
  ),
};

/** GET /cases.csv's query: which cases. Unknown parameters are refused. */
export const CaseFilterQuery = Type.Object(caseFilter, { additionalProperties: false });

/** GET /cases's query: which cases, and which page of them. */
export const CaseListQuery = Type.Object(
  {
    ...caseFilter,
    ...pageQuery(),
  },
  { additionalProperties: false },
);

/** POST /cases/:id/cells/:index/review's path. */
export const CellParams = Type.Object({
  id: Type.String({ pattern: UUID_PATTERN, description: 'Case id (a UUID).' }),
  index: Type.Integer({
    minimum: 0,
    maximum: 9999,
    description: 'The cell, 0-based, in the order of `cells`.',
  }),
});

/** PATCH /cases/:id's body (and a cell review's); reviewLabel is one of the model's classes or an extra label. */
export function ReviewBody(classes: readonly string[]) {
  return Type.Object({
    reviewLabel: stringEnum([...classes, ...EXTRA_REVIEW_LABELS]),
    reviewer: accountlessActor('reviews', 'reviewer'),
    note: Type.Optional(Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength: 4000 })),
  });
}

export type BoxJson = Static<typeof Box>;
export type CellJson = Static<typeof Cell>;
export type ReviewJson = Static<typeof Review>;
export type CaseJson = Static<typeof Case>;
export type FileErrorJson = Static<typeof FileError>;
export type CaseWithReviewsJson = Static<typeof CaseWithReviews>;
export type CaseListJson = Static<typeof CaseList>;
export type CellParamsJson = Static<typeof CellParams>;
export type CaseListQueryJson = Static<typeof CaseListQuery>;
export type ReviewBodyJson = Static<ReturnType<typeof ReviewBody>>;
