/**
 * The OpenAPI document's head: servers, licence and how the API is secured. Accounts are not built yet
 * (issue 15 part 1): the cookie session and the bearer token are declared so generated clients know them,
 * and every operation's security is optional (`{}` first) until they land.
 */
import type { SwaggerOptions } from '@fastify/swagger';

export const SECURITY_SCHEMES = {
  session: {
    type: 'apiKey',
    in: 'cookie',
    name: 'hv_session',
    description:
      'The session cookie of a signed-in account (the web app). Not enforced yet: accounts to come.',
  },
  bearer: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API token for scripts (`Authorization: Bearer <token>`). Not enforced yet: accounts to come.',
  },
} as const;

/** Optional for now: anonymous (`{}`) or either scheme. */
export const SECURITY: Record<string, string[]>[] = [{}, { session: [] }, { bearer: [] }];

export function openapiOptions(version: string): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'HematoVision API',
        version,
        description:
          'White-blood-cell classification of stained blood-smear images, and the cases it stored. ' +
          'Authentication is declared (session cookie, bearer token) but not required yet.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: '/', description: 'The server that serves this document' }],
      components: { securitySchemes: { ...SECURITY_SCHEMES } },
      security: SECURITY,
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  };
}
