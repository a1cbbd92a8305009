/**
 * The secrets of accounts: argon2id password hashes (@node-rs/argon2, its defaults: OWASP's 19 MiB, 2
 * passes), and random session, API-token and setup secrets stored only as their sha256 (they carry 256 bits
 * of randomness, so a fast hash is enough: nothing to guess).
 */
import { createHash, randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

/** A random secret (256 bits, base64url), with a prefix that says what it is (`hv_` for API tokens). */
export function newSecret(prefix = ''): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

let dummy: Promise<string> | undefined;

/**
 * Whether the password matches the hash. A missing user or hash still costs one argon2 verification, so the
 * time of a refusal does not tell whether the name exists.
 */
export async function verifyPassword(passwordHash: string | null, password: string): Promise<boolean> {
  if (!passwordHash) {
    dummy ??= hash(newSecret());
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}
