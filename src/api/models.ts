/** Admin shapes: model versions, their activation, adaptation jobs and what a candidate scored. */
import { Type, type Static } from '@sinclair/typebox';
import { nullableString, stringEnum } from './shapes.js';

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

export type ModelVersionJson = Static<typeof ModelVersionJson>;
export type ModelVersionListJson = Static<typeof ModelVersionList>;
export type JobJsonShape = Static<typeof JobJson>;
export type AdaptationRequestJson = Static<typeof AdaptationRequest>;
