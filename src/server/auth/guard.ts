/**
 * The guard: who is asking (session cookie or bearer token, or the local account when accounts are off) and
 * whether access.ts lets them. Installed on the root instance before any route, it gives every route its
 * access level (and the OpenAPI operation its security) as the route is added, and refuses to start a
 * server with an API route that has none: a new route cannot be left open by omission.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import cookie from '@fastify/cookie';
import { SESSION_COOKIE } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import type { Account, AccountStore } from '../store/index.js';
import { allowed, OPERATION_ACCESS, pathAccess, type Access } from './access.js';
import { newSecret, sha256Hex } from './secrets.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in account (the local one when accounts are off), or null. */
    account: Account | null;
  }
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyInstance {
    auth: AuthState;
  }
}

export interface AuthState {
  /** false: AUTH=off; every request acts as LOCAL_ACCOUNT. */
  enabled: boolean;
  /** The one-time first-start secret while no account exists (printed on the console); else null. */
  setupToken: string | null;
  /** Sets the session cookie of a new session for the account. */
  startSession(request: FastifyRequest, reply: FastifyReply, account: Account): Promise<void>;
  endSession(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}

/** Who acts when accounts are off: an admin with no clinic (reviews then carry the name typed). */
export const LOCAL_ACCOUNT: Account = {
  id: 'local',
  name: 'local',
  displayName: 'local',
  role: 'admin',
  clinic: null,
  disabled: false,
  createdAt: '1970-01-01T00:00:00.000Z',
};

export const SESSION_HOURS = 12;

/** Security of an operation in the OpenAPI document: none for public ones, else the cookie or a token. */
export function securityOf(access: Access): Record<string, string[]>[] {
  return access === 'public' ? [] : [{ session: [] }, { bearer: [] }];
}

export async function installGuard(
  app: FastifyInstance,
  opts: {
    enabled: boolean;
    accounts: AccountStore;
    /** Rate limits (rate-limits.ts), run once the account is known and before access is checked. */
    limit?: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  },
): Promise<void> {
  const { accounts } = opts;
  await app.register(cookie);
  const setupToken = opts.enabled && (await accounts.countUsers()) === 0 ? newSecret() : null;

  const state: AuthState = {
    enabled: opts.enabled,
    setupToken,
    async startSession(request, reply, account) {
      const secret = newSecret();
      const expires = new Date(Date.now() + SESSION_HOURS * 3600_000);
      await accounts.addSession(account.id, sha256Hex(secret), expires.toISOString());
      reply.setCookie(SESSION_COOKIE, secret, {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        // Over TLS (directly, or behind a proxy trusted with X-Forwarded-Proto): never sent in clear.
        secure: request.protocol === 'https',
        expires,
      });
    },
    async endSession(request, reply) {
      const secret = request.cookies[SESSION_COOKIE];
      if (secret) await accounts.deleteSession(sha256Hex(secret));
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
    },
  };
  app.decorate('auth', state);
  app.decorateRequest('account', null);

  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as { operationId?: string; security?: unknown } | undefined;
    const id = schema?.operationId;
    const access = id !== undefined ? OPERATION_ACCESS[id] : pathAccess(route.url);
    if (!access)
      throw new Error(
        `No access rule for ${String(route.method)} ${route.url}${id ? ` (${id})` : ''}: add it to auth/access.ts.`,
      );
    route.config = { ...route.config, access };
    if (schema && id !== undefined) schema.security = securityOf(access);
  });

  app.addHook('onRequest', async (request, reply) => {
    request.account = opts.enabled ? await authenticate(request, accounts) : LOCAL_ACCOUNT;
    // Keyed by the account when there is one; before the 401, so bad credentials count (by address) too.
    await opts.limit?.(request, reply);
    const access = request.routeOptions.config?.access ?? 'public';
    if (access === 'public' || allowed(request.account, access)) return;
    if (!request.account) {
      reply.header('www-authenticate', 'Bearer realm="HematoVision"');
      throw new HematoError(
        'Sign in first (the web app), or send an API token: Authorization: Bearer <token>.',
        'unauthorized',
        401,
      );
    }
    throw new HematoError(
      `Your account (${request.account.role}) may not do this${access === 'manage' ? ': admins only' : ''}.`,
      'forbidden',
      403,
    );
  });
}

/** The account of the bearer token, else of the session cookie; null when neither is valid. */
async function authenticate(request: FastifyRequest, accounts: AccountStore): Promise<Account | null> {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? ((await accounts.tokenUser(sha256Hex(m[1]))) ?? null) : null;
  }
  const secret = request.cookies[SESSION_COOKIE];
  return secret ? ((await accounts.sessionUser(sha256Hex(secret))) ?? null) : null;
}

/**
 * The sha256 of the session the request was authenticated by (as authenticate() chooses: a bearer token
 * wins), or undefined when it came with a token or no session.
 */
export function sessionOf(request: FastifyRequest): string | undefined {
  if (request.headers.authorization !== undefined) return undefined;
  const secret = request.cookies[SESSION_COOKIE];
  return secret ? sha256Hex(secret) : undefined;
}

/**
 * Who a review or sign-off is by: the signed-in account's display name when accounts are on (a name in the
 * request is refused: it could be anyone's), the typed name when they are off.
 */
export function actingName(request: FastifyRequest, typed: string | undefined, what: string): string {
  if (request.server.auth.enabled) {
    if (typed !== undefined)
      throw new HematoError(
        `The ${what} is the signed-in account (${request.account?.displayName}); leave out \`reviewer\`.`,
        'reviewer_is_account',
      );
    return request.account!.displayName;
  }
  if (!typed?.trim())
    throw new HematoError(`Say who the ${what} is: \`reviewer\` (accounts are off).`, 'invalid_request');
  return typed.trim();
}

/** The login name the audit trail records. */
export function actor(request: FastifyRequest): string {
  return request.account?.name ?? 'anonymous';
}
