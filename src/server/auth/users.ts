/**
 * Making accounts, setting passwords and making API tokens, shared by the API (routes/accounts.ts,
 * routes/password.ts) and the command line (`hematovision users|tokens`), so both check the same things.
 */
import { randomUUID } from 'node:crypto';
import { PASSWORD_MIN, ROLES, type Role } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import type { Account, AccountStore, ApiToken } from '../store/index.js';
import { hashPassword, newSecret, sha256Hex, verifyPassword } from './secrets.js';

export interface AccountInput {
  name: string;
  displayName?: string;
  role: Role;
  clinic?: string | null;
  password: string;
}

const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** Checks and stores a new account (its password hashed); a clear error for what is wrong. */
export async function createAccount(
  accounts: AccountStore,
  input: AccountInput,
  options: { onlyIfNone?: boolean } = {},
): Promise<Account> {
  const name = input.name.trim();
  if (!NAME.test(name))
    throw new HematoError('A login name is 1–64 letters, digits or . _ @ - (no spaces).', 'invalid_request');
  if (!ROLES.includes(input.role))
    throw new HematoError(`The role is one of ${ROLES.join(', ')}, not "${input.role}".`, 'invalid_request');
  checkPassword(input.password);
  const clinic = input.clinic?.trim() || null;
  if (input.role === 'clinic' && !clinic)
    throw new HematoError('A clinic account needs its clinic.', 'invalid_request');
  if (input.role !== 'clinic' && clinic)
    throw new HematoError('Only a clinic account has a clinic.', 'invalid_request');
  const created = await accounts.addUser(
    {
      name,
      displayName: input.displayName?.trim() || name,
      role: input.role,
      clinic,
      passwordHash: await hashPassword(input.password),
    },
    options,
  );
  if (!created)
    throw options.onlyIfNone
      ? new HematoError('This server is set up already: sign in.', 'setup_done', 409)
      : new HematoError(`An account "${name}" exists already (any case).`, 'account_exists', 409);
  return created;
}

/**
 * The password rule, for every way a password is set (the API schemas say the same length, from the same
 * constant, so a client learns it before sending).
 */
export function checkPassword(password: string): void {
  if (password.length < PASSWORD_MIN)
    throw new HematoError(`A password has at least ${PASSWORD_MIN} characters.`, 'weak_password');
}

/**
 * An account changes its own password: the current one must match (a session left open is not enough to
 * take the account over). Every other session of the account ends; `keepSessionSha256`, the one asking, stays.
 */
export async function changePassword(
  accounts: AccountStore,
  account: Account,
  passwords: { current: string; next: string },
  keepSessionSha256?: string,
): Promise<void> {
  const user = await accounts.findUser(account.name);
  if (!user || !(await verifyPassword(user.passwordHash, passwords.current)))
    throw new HematoError('The current password is wrong.', 'wrong_password', 403);
  checkPassword(passwords.next);
  if (passwords.next === passwords.current)
    throw new HematoError('The new password is the current one: choose another.', 'weak_password');
  await accounts.setPassword(user.name, await hashPassword(passwords.next), keepSessionSha256);
}

/** An admin sets another account's password (the CLI): every session of that account ends. */
export async function resetPassword(
  accounts: AccountStore,
  name: string,
  password: string,
): Promise<Account> {
  checkPassword(password);
  const user = await accounts.findUser(name);
  if (!user) throw new HematoError(`No account "${name}".`, 'not_found', 404);
  await accounts.setPassword(user.name, await hashPassword(password));
  return user;
}

/** A new API token for the user: the secret (shown once, never stored) and its record. */
export async function createApiToken(
  accounts: AccountStore,
  userName: string,
  name: string,
): Promise<{ token: string; record: ApiToken }> {
  const user = await accounts.findUser(userName);
  if (!user) throw new HematoError(`No account "${userName}".`, 'not_found', 404);
  if (user.disabled) throw new HematoError(`The account "${user.name}" is disabled.`, 'invalid_request');
  const token = newSecret('hv_');
  const record = await accounts.addToken(user.id, { id: randomUUID(), sha256: sha256Hex(token), name });
  return { token, record };
}
