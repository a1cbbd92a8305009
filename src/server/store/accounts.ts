/**
 * What the server needs of accounts, sessions, API tokens and the audit trail, independent of the database
 * (sqlite-accounts.ts, postgres-accounts.ts). Secrets are never stored: sessions and tokens by the sha256 of
 * their random value, passwords as argon2 hashes (made and checked in src/server/auth, not here).
 */
import type { AuditAction, AuditTarget, Role } from '../../api/constants.js';

export type { AuditAction, AuditTarget, Role };

/** A user as the server and the API see it (no hash). */
export interface Account {
  id: string;
  /** The login name, unique whatever its case. */
  name: string;
  /** The name shown on reviews and signed reports. */
  displayName: string;
  role: Role;
  /** The clinic a `clinic` account uploads for and is limited to; null for the others. */
  clinic: string | null;
  disabled: boolean;
  createdAt: string;
}

export interface NewAccount {
  name: string;
  displayName: string;
  role: Role;
  clinic: string | null;
  passwordHash: string | null;
}

export interface ApiToken {
  id: string;
  /** Whose token it is (their login name). */
  user: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface NewAuditEntry {
  /** The account's login name ('local' when accounts are off, 'cli' for the command line). */
  actor: string;
  action: AuditAction;
  targetType: AuditTarget;
  targetId: string;
  /** Free text: a delete's reason, a review's label, an export's filter. */
  detail?: string;
  /** The client address of the request (null or absent: not from a request, e.g. the CLI). */
  ip?: string | null;
}

export type AuditEntry = Required<NewAuditEntry> & { id: number; at: string };

export interface AuditFilter {
  targetType?: AuditTarget;
  targetId?: string;
  action?: AuditAction;
  limit: number;
  offset: number;
}

export interface AccountStore {
  countUsers(): Promise<number>;
  /**
   * Stores a user; undefined when the name is taken (any case), or, with `onlyIfNone`, when any user exists
   * already (the first-start admin: two setup requests cannot both create one).
   */
  addUser(user: NewAccount, options?: { onlyIfNone?: boolean }): Promise<Account | undefined>;
  /** By login name, any case, with its password hash (for sign-in). */
  findUser(name: string): Promise<(Account & { passwordHash: string | null }) | undefined>;
  listUsers(): Promise<Account[]>;
  /** false when there is no such user. Disabling ends the user's sessions. */
  setDisabled(name: string, disabled: boolean): Promise<boolean>;
  /**
   * Replaces the user's password hash and ends every session of the user but `keepSessionSha256` (the one
   * that changed it, if any): whoever knew the old password is signed out. API tokens stay. false when there
   * is no such user.
   */
  setPassword(name: string, passwordHash: string, keepSessionSha256?: string): Promise<boolean>;
  addSession(userId: string, tokenSha256: string, expiresAt: string): Promise<void>;
  /** The session's user while it has not expired and the user is enabled. */
  sessionUser(tokenSha256: string): Promise<Account | undefined>;
  deleteSession(tokenSha256: string): Promise<void>;
  addToken(userId: string, token: { id: string; sha256: string; name: string }): Promise<ApiToken>;
  /** The token's user while it is not revoked and the user is enabled. */
  tokenUser(tokenSha256: string): Promise<Account | undefined>;
  listTokens(): Promise<ApiToken[]>;
  /** false when there is no such token or it was revoked already. */
  revokeToken(id: string): Promise<boolean>;
  /** Appends to the audit trail (nothing ever changes or removes an entry). */
  audit(entry: NewAuditEntry): Promise<void>;
  /** Newest first. */
  auditEntries(filter: AuditFilter): Promise<{ entries: AuditEntry[]; total: number }>;
}
