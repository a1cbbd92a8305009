/** The shapes of a specimen (one patient's slide), its differential, its cells for review and its sign-off. */
import { Type, type Static } from '@sinclair/typebox';
import { REVIEW_REASONS } from '../model/types.js';
import { Box, Review } from './cases.js';
import { SPECIMEN_ID_MAX, SPECIMEN_SORTS, SPECIMEN_TARGETS } from './constants.js';
import { Differential } from './predict.js';
import { accountlessActor, nullableString, pageQuery, ref, stringEnum } from './shapes.js';

const nullableRef = <T extends { $id?: string }>(schema: T, description: string) =>
  Type.Unsafe<Static<typeof Review> | null>({
    anyOf: [{ $ref: `${schema.$id}#` }, { type: 'null' }],
    description,
  });

const target = () =>
  Type.Unsafe<100 | 200>({
    type: 'integer',
    enum: [...SPECIMEN_TARGETS],
    description: 'White cells the count aims for.',
  });

/** POST /specimens's body. The id is trimmed; 1–64 characters remain. */
export const NewSpecimen = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      maxLength: 200,
      pattern: '\\S',
      description: `The lab's accession or specimen id (free text, no patient names needed): trimmed, 1–${SPECIMEN_ID_MAX} characters, unique whatever its case.`,
    }),
    source: Type.Optional(nullableString({ maxLength: 200, description: 'Source or clinic.' })),
    note: Type.Optional(nullableString({ maxLength: 4000 })),
    targetCount: Type.Optional(
      Type.Unsafe<100 | 200>({ type: 'integer', enum: [...SPECIMEN_TARGETS], default: 100 }),
    ),
  },
  { additionalProperties: false },
);

/**
 * PATCH /specimens/:id's body: the fields to change, at least one. The id is not among them: it is what the
 * specimen's images, signed reports and audit entries are filed under (a wrong id: create the right specimen).
 * A blank source or note clears it.
 */
export const SpecimenEdit = Type.Object(
  {
    source: Type.Optional(
      nullableString({ maxLength: 200, description: 'Source or clinic; null clears it.' }),
    ),
    note: Type.Optional(nullableString({ maxLength: 4000, description: 'Null clears it.' })),
    targetCount: Type.Optional(target()),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const Specimen = Type.Object(
  {
    id: Type.String(),
    source: nullableString(),
    note: nullableString(),
    targetCount: target(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time', description: 'Last change to it, its images or reviews.' }),
    imageCount: Type.Integer(),
    cellCount: Type.Integer({
      description: 'Located cells of its images (an image without cells counts 1).',
    }),
    clinic: Type.Optional(
      nullableString({ description: 'The clinic that created it, if a clinic account.' }),
    ),
  },
  { $id: 'Specimen', description: "A specimen (one patient's slide): the images uploaded into it." },
);

export const SpecimenCell = Type.Object(
  {
    caseId: Type.String({ format: 'uuid' }),
    cell: Type.Integer({ description: 'Index of the cell in its case (0-based).' }),
    file: Type.String(),
    box: Type.Unsafe<Static<typeof Box> | null>({
      anyOf: [{ $ref: 'Box#' }, { type: 'null' }],
      description: 'Null for an image analysed as one cell.',
    }),
    label: Type.String({ description: "The label counted: the reviewer's when reviewed, else the model's." }),
    predictedLabel: Type.String(),
    confidence: Type.Number({ description: "The model's probability for its own label." }),
    needsReview: Type.Boolean({ description: 'Flagged by the model and not yet confirmed or corrected.' }),
    reviewReasons: Type.Array(stringEnum(REVIEW_REASONS)),
    review: nullableRef(Review, 'Its latest review.'),
    cropUrl: Type.String(),
  },
  { $id: 'SpecimenCell' },
);

export const Signoff = Type.Object({
  revision: Type.Integer({ minimum: 1 }),
  reviewer: Type.String(),
  signedAt: Type.String({ format: 'date-time' }),
  reportUrl: Type.String({ description: 'The frozen PDF of this revision.' }),
});

export const SpecimenDetail = Type.Object(
  {
    specimen: ref(Specimen),
    differential: ref(Differential),
    unclassified: Type.Integer({
      description: 'Cells reviewed as `other` or `not_a_white_cell`: counted in no class.',
    }),
    progress: Type.Object({
      counted: Type.Integer({ description: 'White cells counted.' }),
      target: target(),
      percent: Type.Number({ description: 'counted / target × 100, at most 100.' }),
    }),
    needsReview: Type.Integer({ description: 'Cells still needing review.' }),
    cells: Type.Array(ref(SpecimenCell), { description: 'Every cell, in upload order.' }),
    queue: Type.Array(Type.Integer(), {
      description:
        'Positions in `cells` of the cells needing review, most doubtful (lowest confidence) first.',
    }),
    signoffs: Type.Array(Signoff, { description: 'Signed revisions, oldest first.' }),
    revision: Type.Integer({
      minimum: 1,
      description:
        'The revision the report has now: the latest signed one while nothing changed since, else the next.',
    }),
    signed: Type.Boolean({ description: 'The report as it is now is signed (nothing changed since).' }),
    reportUrl: Type.String(),
  },
  { description: 'A specimen, its differential (reviewed labels over predicted ones) and its cells.' },
);

export const SpecimenParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200, description: 'The specimen id (any case).' }),
});

export const SpecimenListQuery = Type.Object(
  {
    search: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Part of the id, source or note, any case.' }),
    ),
    sort: Type.Optional(stringEnum(SPECIMEN_SORTS, { default: 'newest' })),
    ...pageQuery(),
  },
  { additionalProperties: false },
);

export const SpecimenList = Type.Object({
  specimens: Type.Array(ref(Specimen)),
  total: Type.Integer(),
});

export const SignBody = Type.Object(
  {
    reviewer: accountlessActor('signs', 'signer'),
  },
  { additionalProperties: false },
);

export const ReportQuery = Type.Object(
  {
    revision: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'A signed revision (frozen); default: the report as it is now.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PredictQuery = Type.Object(
  {
    tta: Type.Optional(Type.Boolean({ description: 'Test-time augmentation for this request.' })),
    specimen: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          'Store the images in this specimen (its id, any case). Unknown → 404 before anything is read or stored.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type NewSpecimenJson = Static<typeof NewSpecimen>;
export type SpecimenEditJson = Static<typeof SpecimenEdit>;
export type SpecimenJson = Static<typeof Specimen>;
export type SpecimenCellJson = Static<typeof SpecimenCell>;
export type SpecimenDetailJson = Static<typeof SpecimenDetail>;
export type SpecimenListJson = Static<typeof SpecimenList>;
export type SpecimenListQueryJson = Static<typeof SpecimenListQuery>;
export type SignoffJson = Static<typeof Signoff>;
