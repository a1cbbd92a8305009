/** The shapes of POST /predict's reply: a case or a refusal per file, the differential, the domain check. */
import { Type, type Static } from '@sinclair/typebox';
import { Case, FileError } from './cases.js';
import { numberMap, ref } from './shapes.js';

export const Domain = Type.Object(
  {
    n: Type.Integer(),
    score: Type.Number({ description: 'Median image distance; 1 is the per-image threshold.' }),
    unfamiliarShare: Type.Number({ description: 'Share of the images beyond the per-image threshold.' }),
    unfamiliar: Type.Boolean({ description: 'The batch as a whole looks unlike the training labs.' }),
    summary: Type.String({ description: 'The same in a plain sentence.' }),
  },
  {
    $id: 'Domain',
    description:
      "How far a request's images lie from the labs the model learned from (a model with familiarity checks).",
  },
);

export const Differential = Type.Object(
  {
    counts: numberMap({ description: 'Cells of every class the model knows.', integer: true }),
    percentages: numberMap({ description: 'Share of the white cells, per white-cell class.' }),
    total: Type.Integer({ description: 'White cells counted (erythroblasts and platelets are not).' }),
    per100White: numberMap({
      description: 'Erythroblasts and platelets (when the model knows them) per 100 white cells.',
    }),
  },
  {
    $id: 'Differential',
    description:
      'White-cell differential over every cell of every image of the request (an image analysed without ' +
      'cells counts its label once). Every class of the model is counted; white-cell percentages sum to 100 ' +
      'unless total is 0; erythroblasts and platelets are counted beside them, per 100 white cells.',
  },
);

export const PredictItem = Type.Unsafe<Static<typeof Case> | Static<typeof FileError>>({
  anyOf: [{ $ref: 'Case#' }, { $ref: 'FileError#' }],
});

export const PredictResponse = Type.Object({
  cases: Type.Array(PredictItem),
  differential: ref(Differential),
  domain: Type.Optional(ref(Domain)),
});

export type DomainJson = Static<typeof Domain>;
export type DifferentialJson = Static<typeof Differential>;
export type PredictItemJson = Static<typeof PredictItem>;
export type PredictResponseJson = Static<typeof PredictResponse>;
