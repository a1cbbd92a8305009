/** The shapes of the service routes and of every error reply. */
import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from './shapes.js';

export const ErrorReply = Type.Object(
  {
    error: Type.String({ examples: ['not_found'] }),
    message: Type.String(),
  },
  { $id: 'Error', description: 'Every 4xx/5xx reply: a stable machine code and a message for a person.' },
);

export const Health = Type.Object({
  status: stringEnum(['ok'] as const),
  model: Type.Object({
    name: Type.String(),
    version: Type.String(),
    classes: Type.Array(Type.String()),
    tta: Type.Boolean({
      description: 'The model is calibrated for test-time augmentation (predict ?tta=true).',
    }),
  }),
});

const Check = (description: string, extra: Parameters<typeof Type.Object>[0] = {}) =>
  Type.Object(
    {
      ok: Type.Boolean(),
      message: Type.Optional(Type.String({ description: 'Why not, when not ok.' })),
      ...extra,
    },
    { description },
  );

/** GET /ready: whether this server can take work now (503 with the same shape when it cannot). */
export const Ready = Type.Object({
  status: stringEnum(['ready', 'not_ready'] as const),
  checks: Type.Object({
    database: Check('The case database takes a write (its write lock is taken and released).'),
    disk: Check('Free space in the data folder is at least the threshold (MIN_FREE_MB).', {
      freeBytes: Type.Optional(Type.Number()),
      minFreeBytes: Type.Number(),
    }),
    model: Check('The model is loaded.'),
  }),
});

/** The model card as model.json has it (any further field passes through), and how the server runs it. */
export const ModelInfo = Type.Object(
  {
    name: Type.String(),
    version: Type.String(),
    classes: Type.Array(Type.String()),
    reviewThreshold: Type.Optional(Type.Number()),
    inUse: Type.Optional(
      Type.Object(
        { tta: Type.Boolean(), reviewThreshold: Type.Number() },
        {
          description:
            "How this server runs the model: with test-time augmentation (each cell's 8 flips and turns " +
            'averaged) or not, and the review threshold calibrated for that (predictions are flagged below it).',
        },
      ),
    ),
  },
  { additionalProperties: true },
);

export type ErrorJson = Static<typeof ErrorReply>;
export type HealthJson = Static<typeof Health>;
export type ReadyJson = Static<typeof Ready>;
export type ModelInfoJson = Static<typeof ModelInfo>;
