/** Admin shapes: model versions, their activation, adaptation jobs and what a candidate scored. */
import { Type, type Static } from '@sinclair/typebox';
import { nullableString, numberMap, schemaMap, stringEnum } from './shapes.js';

export const ModelVersionJson = Type.Object({
  version: Type.Integer({
    minimum: 1,
    description: 'Version 1 is the model the server first ran (the bundled one).',
  }),
  sha256: Type.String({ description: "The model file's sha256: what every case it analysed records." }),
  name: Type.String(),
  cardVersion: Type.String({ description: "The card's own version text." }),
  source: Type.String({ description: "'bundled', 'startup' (MODEL) or 'adaptation'." }),
  jobId: nullableString({ description: 'The adaptation job that made it.' }),
  createdAt: Type.String(),
  active: Type.Boolean({ description: 'The version this server serves now.' }),
  classes: Type.Array(Type.String()),
  card: Type.Unknown({ description: 'The model card (model.json).' }),
});

export const ModelVersionList = Type.Object({
  active: Type.Integer(),
  versions: Type.Array(ModelVersionJson),
  activations: Type.Array(Type.Object({ version: Type.Integer(), activatedAt: Type.String() }), {
    description: 'Newest first: what was active when (the latest 50).',
  }),
  rollbackTo: Type.Union([Type.Integer(), Type.Null()], {
    description:
      'The version a roll back would activate: the one active before the current one was activated, skipping ' +
      'versions already rolled back from (an undo). Null when there is nothing left to roll back to.',
  }),
});

export const JobJson = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  state: stringEnum(['queued', 'running', 'succeeded', 'failed'] as const),
  progress: Type.Number({ minimum: 0, maximum: 1 }),
  stage: nullableString(),
  error: nullableString({ description: 'Why it failed, for a person.' }),
  attempts: Type.Integer({
    description: 'Runs started; more than one when the replica running it died and another took it over.',
  }),
  createdAt: Type.String(),
  startedAt: nullableString(),
  updatedAt: Type.String(),
  finishedAt: nullableString(),
  result: Type.Unknown(),
});

export const AdaptationRequest = Type.Object(
  {
    minCellsPerClass: Type.Optional(
      Type.Integer({
        minimum: 2,
        maximum: 1000,
        description: 'Fewest reviewed cells of each class (default 10).',
      }),
    ),
    holdOutFraction: Type.Optional(
      Type.Number({
        minimum: 0.1,
        maximum: 0.5,
        description:
          'Part of the reviewed images held back to score the candidate (default 0.3): chosen per class by a ' +
          "hash of each image's content with the seed, so the same reviewed images always split the same way.",
      }),
    ),
    seed: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Seeds the held-back split and nothing else (default 1).' }),
    ),
  },
  { additionalProperties: false },
);

/** One model's score on the reviewed cells an adaptation held back (training/reviewed.ts heldOutScore). */
export const HeldOutScore = Type.Object({
  accuracy: Type.Number(),
  macroF1: Type.Number(),
  reviewRate: Type.Number({
    description: 'Share of cells flagged for review (confidence below the review threshold, or unfamiliar).',
  }),
  silentErrors: Type.Integer({
    description: 'Wrong and not flagged: the errors nobody is asked to look at.',
  }),
  silentErrorRate: Type.Number(),
  ece: Type.Optional(
    Type.Number({ description: 'Expected calibration error of its probabilities (absent from older jobs).' }),
  ),
  perClass: schemaMap(
    Type.Object({
      precision: Type.Number(),
      recall: Type.Number(),
      f1: Type.Number(),
      support: Type.Integer(),
    }),
    { description: 'Per class the model knows.' },
  ),
});

/** The candidate beside the active model on the same held-back cells. */
export const AdaptationComparison = Type.Object({
  heldOut: Type.Integer({ description: 'Held-back cells scored (whole images held back).' }),
  active: HeldOutScore,
  candidate: HeldOutScore,
});

/** What a succeeded adaptation job made (server/models/adaptation.ts). */
export const AdaptationResult = Type.Object({
  baseVersion: Type.Integer(),
  baseSha256: Type.String(),
  candidateVersion: Type.Integer(),
  candidateSha256: Type.String(),
  counts: Type.Object({
    trained: numberMap({ integer: true, description: 'Cells the scored head was trained on, per class.' }),
    heldOut: numberMap({ integer: true, description: 'Cells held back to score it (whole images).' }),
    final: Type.Optional(
      numberMap({
        integer: true,
        description:
          "Cells the stored candidate's head was trained on: every usable reviewed cell (absent from older jobs).",
      }),
    ),
    calibration: Type.Optional(
      numberMap({
        integer: true,
        description:
          'Fine-tuned: cells of the training part that calibrated its temperature and review threshold.',
      }),
    ),
    ignored: numberMap({ integer: true, description: 'Reviewed cells of classes the model does not know.' }),
  }),
  comparison: AdaptationComparison,
  recipe: Type.Optional(
    Type.Object(
      {
        kind: Type.Optional(
          stringEnum(['head', 'fine-tune'] as const, {
            description:
              "'head': a new head on the active model's frozen backbone; 'fine-tune': the whole network " +
              'fine-tuned from the active model (chosen when every class has enough reviewed cells). ' +
              "Absent from older jobs: 'head'.",
          }),
        ),
        reason: Type.Optional(Type.String({ description: 'Why this recipe, in words.' })),
        l2: Type.Number(),
        l2Cv: Type.Optional(
          Type.Array(Type.Object({ l2: Type.Number(), nll: Type.Number(), accuracy: Type.Number() })),
        ),
        folds: Type.Optional(Type.Integer()),
        views: Type.Optional(Type.Integer()),
        epochs: Type.Optional(Type.Integer()),
        trainFromBlock: Type.Optional(Type.Integer()),
        lr: Type.Optional(Type.Number()),
        headLr: Type.Optional(Type.Number()),
        batchSize: Type.Optional(Type.Integer()),
        steps: Type.Optional(Type.Integer()),
      },
      { description: 'How the candidate learned (absent from older jobs: a new head).' },
    ),
  ),
});

/** An adaptation is a job whose result, once it succeeded, is what it made. */
export const AdaptationJob = Type.Composite([
  Type.Omit(JobJson, ['result']),
  Type.Object({
    result: Type.Union([AdaptationResult, Type.Null()], { description: 'Set once the job succeeded.' }),
  }),
]);

/** Starts an alignment (POST /api/v1/alignments): the active model aligned to the lab's stored images. */
export const AlignmentRequest = Type.Object(
  {
    images: Type.Optional(
      Type.Integer({
        minimum: 50,
        maximum: 2000,
        description:
          'The most recent stored images (not deleted, one per distinct image) to align on (default 500); ' +
          'at least 50 must be stored.',
      }),
    ),
  },
  { additionalProperties: false },
);

/** Shares of the lab's images an unfamiliar-image check flags. */
const FlaggedShares = Type.Union([
  Type.Object({ unfamiliarImage: Type.Number(), unfamiliarCell: Type.Number() }),
  Type.Null(),
]);

/** What a succeeded alignment job made (server/models/alignment.ts). */
export const AlignmentResult = Type.Object({
  baseVersion: Type.Integer(),
  baseSha256: Type.String(),
  alignedVersion: Type.Integer({
    description: 'The new model version; not active until a person activates it.',
  }),
  alignedSha256: Type.String(),
  images: Type.Integer({ description: 'Stored images whose cells were used.' }),
  skipped: Type.Integer({ description: 'Images read but unusable (unreadable, or no white cell found).' }),
  familiarity: Type.String({ description: "The card's note on the refitted unfamiliar-image check." }),
  flagged: Type.Object(
    { before: FlaggedShares, after: FlaggedShares },
    {
      description:
        "Shares of the lab's images flagged unfamiliar by the active model, then by the aligned one.",
    },
  ),
  seconds: Type.Number(),
});

/** An alignment is a job whose result, once it succeeded, is what it made. */
export const AlignmentJob = Type.Composite([
  Type.Omit(JobJson, ['result']),
  Type.Object({
    result: Type.Union([AlignmentResult, Type.Null()], { description: 'Set once the job succeeded.' }),
  }),
]);

export type ModelVersionJson = Static<typeof ModelVersionJson>;
export type ModelVersionListJson = Static<typeof ModelVersionList>;
export type JobJsonShape = Static<typeof JobJson>;
export type AdaptationRequestJson = Static<typeof AdaptationRequest>;
export type HeldOutScore = Static<typeof HeldOutScore>;
export type AdaptationComparisonJson = Static<typeof AdaptationComparison>;
export type AdaptationResultJson = Static<typeof AdaptationResult>;
export type AdaptationJobJson = Static<typeof AdaptationJob>;
export type AlignmentRequestJson = Static<typeof AlignmentRequest>;
export type AlignmentResultJson = Static<typeof AlignmentResult>;
export type AlignmentJobJson = Static<typeof AlignmentJob>;
