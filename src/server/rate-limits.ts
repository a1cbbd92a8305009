/**
 * Rate limits (@fastify/rate-limit; counters in the process's memory on SQLite, in the database every replica
 * shares on PostgreSQL: shared-rate-limits.ts): a budget per signed-in account, or per client
 * address for anonymous requests, so one account cannot use up another's and a clinic's shared NAT address
 * is not one bucket for all its accounts; predict has its own, stricter budget. Sign-in attempts are limited
 * per login name and address (brute force) and per address (spraying), password changes per account.
 *
 * The general limit runs inside the guard (auth/guard.ts), once the account is known and before a 401, so
 * requests with bad credentials are counted too (by address).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import { API_BASE as API } from '../api/index.js';
import { HematoError } from '../errors.js';
import { sharedStore, sweepPeriodically } from './shared-rate-limits.js';
import type { RateCounters } from './store/index.js';

export interface RateLimits {
  /** Requests per window per account (signed in) or client address (anonymous), all routes but predict. */
  max: number;
  /** Predict requests per window per account or address (each may carry many images): stricter. */
  predictMax: number;
  windowMs: number;
  /** Sign-in attempts per login name and address (and password changes per account) per signInWindowMs. */
  signInMax: number;
  /** Sign-in attempts per address, whatever the names (one password tried on many names), per signInWindowMs. */
  signInAddressMax: number;
  signInWindowMs: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  max: 1200,
  predictMax: 120,
  windowMs: 60_000,
  signInMax: 10,
  // A clinic's staff behind one NAT address sign in through it: far above what they need, far below what
  // spraying many names (each an argon2 check) would.
  signInAddressMax: 100,
  signInWindowMs: 15 * 60_000,
};

interface AttemptBudget {
  key: (request: FastifyRequest) => string;
  max: (limits: RateLimits) => number;
  /** What is limited, for the refusal. */
  what: string;
}

const loginName = (request: FastifyRequest) => (request.body as { name: string }).name.trim().toLowerCase();

/** Operations that check a password: each attempt counts against these budgets, before the check. */
const PASSWORD_CHECKS: Record<string, AttemptBudget[]> = {
  signIn: [
    // Per name and address: a guesser elsewhere cannot lock the name's owner out.
    {
      key: (request) => `sign-in:${normalizeIP(request.ip)}:${loginName(request)}`,
      max: (limits) => limits.signInMax,
      what: 'sign-in attempts for this name from this address',
    },
    {
      key: (request) => `sign-in:${normalizeIP(request.ip)}`,
      max: (limits) => limits.signInAddressMax,
      what: 'sign-in attempts from this address',
    },
  ],
  // Per account: a session left open must not become a password oracle.
  changePassword: [
    {
      key: (request) => `password:${request.account?.id ?? normalizeIP(request.ip)}`,
      max: (limits) => limits.signInMax,
      what: 'password changes',
    },
  ],
};

/** The budget a request counts against: its account's when signed in (accounts on), else its address's. */
export function clientKey(request: FastifyRequest): { key: string; who: 'account' | 'address' } {
  if (request.server.auth.enabled && request.account)
    return { key: `account:${request.account.id}`, who: 'account' };
  return { key: `ip:${normalizeIP(request.ip)}`, who: 'address' };
}

/**
 * Registers the limiter; returns the general limit as a function for the guard to call once it knows the
 * account. Must be installed before the routes (it adds the sign-in limit to them as they are added).
 * `shared`: counters every replica uses (PostgreSQL); without them each process counts alone.
 */
export async function installRateLimits(
  app: FastifyInstance,
  limits: RateLimits,
  shared?: RateCounters,
): Promise<(request: FastifyRequest, reply: FastifyReply) => Promise<void>> {
  if (shared) {
    // A database error lets the request through (logged once per outage) rather than answering 500.
    await app.register(rateLimit, { global: false, store: sharedStore(shared, app.log), skipOnError: true });
    sweepPeriodically(app, shared);
  } else await app.register(rateLimit, { global: false });
  const isPredict = (request: FastifyRequest) =>
    request.method === 'POST' && request.url.split('?')[0] === `${API}/predict`;
  const general = app.createRateLimit({
    timeWindow: limits.windowMs,
    max: (request) => (isPredict(request) ? limits.predictMax : limits.max),
    // Predict has its own budget, so reads are not used up by uploads nor uploads by reads.
    keyGenerator: (request) => `${isPredict(request) ? 'predict:' : ''}${clientKey(request).key}`,
  });

  app.addHook('onRoute', (route: RouteOptions) => {
    const id = (route.schema as { operationId?: string } | undefined)?.operationId;
    if (id === undefined || !Object.hasOwn(PASSWORD_CHECKS, id)) return;
    const budgets = PASSWORD_CHECKS[id].map((budget) => ({
      ...budget,
      max: budget.max(limits),
      limiter: app.createRateLimit({
        timeWindow: limits.signInWindowMs,
        max: budget.max(limits),
        keyGenerator: budget.key,
      }),
    }));
    // After validation (the name is in the body), before the handler checks the password.
    const hooks = route.preHandler === undefined ? [] : [route.preHandler].flat();
    route.preHandler = [
      ...hooks,
      async (request, reply) => {
        // Every budget counts the attempt before the check, so attempts sent all at once count all the same.
        const states = await Promise.all(budgets.map((b) => b.limiter(request)));
        const over = budgets.findIndex((_, i) => {
          const state = states[i];
          return !state.isAllowed && state.isExceeded;
        });
        if (over < 0) return;
        const state = states[over];
        refuse(
          reply,
          state.isAllowed ? 0 : state.ttlInSeconds,
          `Too many ${budgets[over].what}: at most ${budgets[over].max} per ${minutes(limits.signInWindowMs)}.`,
          'too_many_attempts',
        );
      },
    ];
  });

  return async (request, reply) => {
    const state = await general(request);
    if (state.isAllowed) return;
    reply.header('x-ratelimit-limit', state.max);
    reply.header('x-ratelimit-remaining', state.remaining);
    reply.header('x-ratelimit-reset', state.ttlInSeconds);
    if (!state.isExceeded) return;
    const { who } = clientKey(request);
    refuse(
      reply,
      state.ttlInSeconds,
      `Too many requests from this ${who}: at most ${state.max}${isPredict(request) ? ' predictions' : ''} ` +
        `per ${Math.round(limits.windowMs / 1000)} s.`,
      'too_many_requests',
    );
  };
}

function refuse(reply: FastifyReply, retryAfterS: number, message: string, code: string): never {
  const seconds = Math.max(1, retryAfterS);
  reply.header('retry-after', String(seconds));
  throw new HematoError(`${message} Retry in ${seconds} s.`, code, 429);
}

function minutes(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m >= 1 ? `${m} min` : `${Math.round(ms / 1000)} s`;
}
