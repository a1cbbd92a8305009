/** The server's hardening settings from the environment (README: configuration), checked with clear errors. */
import { HematoError } from '../errors.js';
import type { AppOptions } from './app.js';
import { DEFAULT_MAX_CONNECTIONS } from './connections.js';
import { DEFAULT_EXPORT_RETENTION_HOURS } from './export-retention.js';
import { DEFAULT_RATE_LIMITS } from './rate-limits.js';

type Env = Record<string, string | undefined>;

export type HardeningOptions = Pick<
  AppOptions,
  | 'allowedHosts'
  | 'rateLimits'
  | 'maxRequestBytes'
  | 'requestTimeoutMs'
  | 'minFreeBytes'
  | 'trustProxy'
  | 'maxConnections'
  | 'exportRetentionHours'
>;

/**
 * ALLOWED_HOSTS (comma-separated `name` or `name:port`), RATE_LIMIT and PREDICT_RATE_LIMIT (requests per
 * minute per signed-in account, or per client IP when anonymous), SIGN_IN_LIMIT and SIGN_IN_ADDRESS_LIMIT
 * (sign-in attempts per 15 min per login name and client IP, and per client IP; RATE_LIMIT=0 turns all
 * off), MAX_REQUEST_MB, REQUEST_TIMEOUT (seconds), MIN_FREE_MB,
 * TRUST_PROXY=1, MAX_CONNECTIONS, EXPORT_RETENTION_HOURS (how long a finished export and its file, patient
 * data, are kept; default 24).
 */
export function hardeningFromEnv(env: Env): HardeningOptions {
  const hosts = env.ALLOWED_HOSTS?.split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const max = number(env, 'RATE_LIMIT', DEFAULT_RATE_LIMITS.max, 0);
  const predictMax = number(env, 'PREDICT_RATE_LIMIT', DEFAULT_RATE_LIMITS.predictMax, 1);
  const signInMax = number(env, 'SIGN_IN_LIMIT', DEFAULT_RATE_LIMITS.signInMax, 1);
  const signInAddressMax = number(env, 'SIGN_IN_ADDRESS_LIMIT', DEFAULT_RATE_LIMITS.signInAddressMax, 1);
  const trust = env.TRUST_PROXY ?? '';
  if (!['', '0', '1'].includes(trust))
    throw new HematoError(`TRUST_PROXY must be 1 or 0, not "${trust}".`, 'bad_config');
  return {
    allowedHosts: hosts && hosts.length > 0 ? hosts : undefined,
    rateLimits: max === 0 ? false : { ...DEFAULT_RATE_LIMITS, max, predictMax, signInMax, signInAddressMax },
    maxRequestBytes: number(env, 'MAX_REQUEST_MB', 100, 1) * 1024 * 1024,
    requestTimeoutMs: number(env, 'REQUEST_TIMEOUT', 120, 1) * 1000,
    minFreeBytes: number(env, 'MIN_FREE_MB', 512, 0) * 1024 * 1024,
    trustProxy: trust === '1',
    maxConnections: number(env, 'MAX_CONNECTIONS', DEFAULT_MAX_CONNECTIONS, 1),
    exportRetentionHours: number(env, 'EXPORT_RETENTION_HOURS', DEFAULT_EXPORT_RETENTION_HOURS, 1),
  };
}

function number(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min)
    throw new HematoError(`${name} must be a number of at least ${min}, not "${raw}".`, 'bad_config');
  return n;
}
