/** The shapes of the bundled teaching set's routes (GET /teaching, GET /teaching/:id/image). */
import { Type, type Static } from '@sinclair/typebox';
import { ErrorReply } from './service.js';

/** One cell of the bundled teaching set: an expert-labelled PBC image. */
export const TeachingCell = Type.Object({
  id: Type.String(),
  label: Type.String({ description: 'The expert’s label (the answer key).' }),
  subtype: Type.Optional(
    Type.String({ description: 'A finer type from the PBC file name (band neutrophil, myelocyte…).' }),
  ),
  sourceFile: Type.String({ description: 'The image’s file name in the PBC dataset.' }),
  imageUrl: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
});

export const TeachingSet = Type.Object({
  source: Type.String(),
  license: Type.String(),
  modified: Type.String(),
  message: Type.Optional(Type.String({ description: 'Why the list is empty, when it is.' })),
  cells: Type.Array(TeachingCell),
});

export const TeachingCellParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

/**
 * The error reply's fields, inline: the teaching routes are a plugin that also runs on a bare Fastify (without
 * the shared schemas registered), so they cannot reference `Error#`.
 */
export const TeachingError = Type.Object(ErrorReply.properties);

export type TeachingCellJson = Static<typeof TeachingCell>;
export type TeachingSetJson = Static<typeof TeachingSet>;
