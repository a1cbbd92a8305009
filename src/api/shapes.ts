/**
 * TypeBox builders for the JSON Schema forms the API uses, with the TypeScript type each one means: a
 * `type` array for nullable scalars, `additionalProperties` maps and string enums (TypeBox's own unions and
 * records would write `anyOf` and `patternProperties` into the OpenAPI document instead).
 */
import { Type, type SchemaOptions, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { LIST_DEFAULTS } from './constants.js';

/** A reference to a shared schema (registered by its $id), typed as that schema. */
export function ref<T extends TSchema>(schema: T): TUnsafe<Static<T>> {
  return Type.Unsafe<Static<T>>(Type.Ref(`${schema.$id}#`));
}

export function nullableString(options: SchemaOptions = {}): TUnsafe<string | null> {
  return Type.Unsafe<string | null>({ type: ['string', 'null'], ...options });
}

export function numberMap(
  options: SchemaOptions & { integer?: boolean } = {},
): TUnsafe<Record<string, number>> {
  const { integer, ...rest } = options;
  return Type.Unsafe<Record<string, number>>({
    type: 'object',
    ...rest,
    additionalProperties: { type: integer ? 'integer' : 'number' },
  });
}

/** A map from names to values of one schema (`additionalProperties`, as numberMap). */
export function schemaMap<T extends TSchema>(
  value: T,
  options: SchemaOptions = {},
): TUnsafe<Record<string, Static<T>>> {
  return Type.Unsafe<Record<string, Static<T>>>({ type: 'object', ...options, additionalProperties: value });
}

export function stringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/**
 * A list route's `limit` and `offset` query fields: optional for the client, always there for the handler
 * (validation fills in LIST_DEFAULTS).
 */
export function pageQuery() {
  return {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: LIST_DEFAULTS.limit })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: LIST_DEFAULTS.offset })),
  };
}

/**
 * Who reviews or signs, named in the body: only when accounts are off (AUTH=off); with accounts it is the
 * signed-in account. `does` and `who` fill in the description ("reviews", "reviewer").
 */
export function accountlessActor(does: string, who: string) {
  return Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      pattern: '\\S',
      description:
        `Only when accounts are off (AUTH=off): who ${does}. With accounts the ${who} is the signed-in ` +
        'account and this field is refused.',
    }),
  );
}
