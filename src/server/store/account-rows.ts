/**
 * Account rows as both stores select them (sqlite-accounts.ts, postgres-accounts.ts; PostgreSQL reads its
 * times as ISO-8601 text, like SQLite stores them), the values both insert, and the audit filter's columns:
 * one owner each.
 */
import type { Account, AuditFilter, NewAccount, NewAuditEntry } from './accounts.js';

/** A `users` row; `password_hash` only when the query asked for it (sign-in). */
export interface UserRow {
  id: string;
  name: string;
  display_name: string;
  role: Account['role'];
  clinic: string | null;
  /** SQLite has no booleans (0/1); PostgreSQL's column is boolean. */
  disabled: number | boolean;
  created_at: string;
  password_hash?: string | null;
}

export function rowToAccount(row: UserRow): Account {
  return {
    id: row.id,
    name: row.name,
    displayName: row.display_name,
    role: row.role,
    clinic: row.clinic,
    disabled: row.disabled === 1 || row.disabled === true,
    createdAt: row.created_at,
  };
}

/** The account of a row that may be missing (undefined then). */
export function maybeAccount(row: UserRow | undefined): Account | undefined {
  return row ? rowToAccount(row) : undefined;
}

/** The account with its password hash, for sign-in (AccountStore.findUser). */
export function accountWithHash(
  row: UserRow | undefined,
): (Account & { passwordHash: string | null }) | undefined {
  return row ? { ...rowToAccount(row), passwordHash: row.password_hash ?? null } : undefined;
}

/** The audit filter as `column = value` conditions, each store writing its own parameter syntax. */
export function auditConditions(filter: AuditFilter): { column: string; value: string }[] {
  const conds: { column: string; value: string }[] = [];
  if (filter.targetType !== undefined) conds.push({ column: 'target_type', value: filter.targetType });
  if (filter.targetId !== undefined) conds.push({ column: 'target_id', value: filter.targetId });
  if (filter.action !== undefined) conds.push({ column: 'action', value: filter.action });
  return conds;
}

/** A new `users` row's values: id, name, display_name, role, clinic, password_hash, created_at. */
export function userValues(id: string, user: NewAccount): (string | null)[] {
  return [
    id,
    user.name,
    user.displayName,
    user.role,
    user.clinic,
    user.passwordHash,
    new Date().toISOString(),
  ];
}

/** A new `audit_log` row's values: at, actor, action, target_type, target_id, detail, ip. */
export function auditValues(entry: NewAuditEntry): (string | null)[] {
  return [
    new Date().toISOString(),
    entry.actor,
    entry.action,
    entry.targetType,
    entry.targetId,
    entry.detail ?? '',
    entry.ip ?? null,
  ];
}
