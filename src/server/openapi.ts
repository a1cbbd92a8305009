/**
 * The OpenAPI document's head: servers, licence and how the API is secured: a session cookie (the web app)
 * or a bearer token (scripts). Each operation says which applies (auth/guard.ts sets it from auth/access.ts):
 * none for the public ones (health, readiness, this document, sign-in), either for the rest.
 */
import type { SwaggerOptions } from '@fastify/swagger';

export const SECURITY_SCHEMES = {
  session: {
    type: 'apiKey',
    in: 'cookie',
    name: 'hv_session',
    description:
      'The session cookie set by POST /session (sign-in) or /setup: HttpOnly, SameSite=Strict, Secure over TLS.',
  },
  bearer: {
    type: 'http',
    scheme: 'bearer',
    description:
      'An API token for scripts (`Authorization: Bearer hv_…`), made with `hematovision tokens create`.',
  },
} as const;

/** The default of an operation that does not say: either scheme. */
export const SECURITY: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];

export function openapiOptions(version: string): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'HematoVision API',
        version,
        description:
          'White-blood-cell classification of stained blood-smear images, and the cases it stored. ' +
          'Every route but health, readiness, this document and sign-in needs a signed-in account (session ' +
          'cookie) or an API token (bearer). Roles: clinic (uploads; its own clinic’s cases), reviewer ' +
          '(reviews all, signs reports), admin (accounts, deletes, the audit trail).',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: '/', description: 'The server that serves this document' }],
      components: { securitySchemes: { ...SECURITY_SCHEMES } },
      security: SECURITY,
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  };
}
