/** Signing in as a test account through the API, for the route tests with accounts on. */
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { Role } from '../api/constants.js';
import { createAccount } from '../server/auth/users.js';

/** The operations anyone may call without an account (sorted); every other one needs a session or a token. */
export const OPEN_OPERATIONS = [
  'getHealth',
  'getOpenApi',
  'getReady',
  'getSession',
  'setUp',
  'signIn',
  'signOut',
];

/** Every test account's password. */
export const PASSWORD = 'correct horse battery';

/** Creates the account and signs in through the API; the session cookie to send (`hv_session=…`). */
export async function signIn(
  app: FastifyInstance,
  name: string,
  role: Role,
  clinic: string | null = null,
): Promise<string> {
  await createAccount(app.caseStore.accounts, {
    name,
    displayName: `Dr ${name}`,
    role,
    clinic,
    password: PASSWORD,
  });
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { name, password: PASSWORD },
  });
  expect(res.statusCode).toBe(200);
  const cookie = res.cookies.find((c) => c.name === 'hv_session');
  expect(cookie).toBeDefined();
  return `hv_session=${cookie!.value}`;
}
