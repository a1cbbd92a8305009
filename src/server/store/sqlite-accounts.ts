/** Accounts, sessions, API tokens and the audit trail in the SQLite case database (accounts.ts). */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import {
  accountWithHash,
  auditConditions,
  auditValues,
  maybeAccount,
  rowToAccount,
  userValues,
  type UserRow,
} from './account-rows.js';
import type {
  Account,
  AccountStore,
  ApiToken,
  AuditEntry,
  AuditFilter,
  NewAccount,
  NewAuditEntry,
} from './accounts.js';

const USER_COLUMNS = 'u.id, u.name, u.display_name, u.role, u.clinic, u.disabled, u.created_at';
const TOKEN_COLUMNS = 't.id, u.name AS user, t.name, t.created_at AS createdAt, t.revoked_at AS revokedAt';

/** The WHERE clause of an audit filter (named parameters, @p0, @p1, …). */
function auditWhere(filter: AuditFilter): { where: string; params: Record<string, unknown> } {
  const conds = auditConditions(filter);
  const params = Object.fromEntries(conds.map((c, i) => [`p${i}`, c.value]));
  const where = conds.map((c, i) => `${c.column} = @p${i}`).join(' AND ');
  return { where: where ? `WHERE ${where}` : '', params };
}

export class SqliteAccountStore implements AccountStore {
  constructor(private readonly db: Database.Database) {}

  async countUsers(): Promise<number> {
    return this.db.prepare('SELECT count(*) FROM users').pluck().get() as number;
  }

  async addUser(user: NewAccount, options: { onlyIfNone?: boolean } = {}): Promise<Account | undefined> {
    const id = randomUUID();
    const info = this.db
      .prepare(
        `INSERT INTO users (id, name, display_name, role, clinic, password_hash, created_at)
         SELECT ?, ?, ?, ?, ?, ?, ? WHERE ? = 0 OR NOT EXISTS (SELECT 1 FROM users)
         ON CONFLICT (name) DO NOTHING`,
      )
      .run(...userValues(id, user), options.onlyIfNone ? 1 : 0);
    return info.changes === 0 ? undefined : this.byId(id);
  }

  private byId(id: string): Account | undefined {
    const row = this.db.prepare(`SELECT ${USER_COLUMNS} FROM users u WHERE u.id = ?`).get(id) as
      UserRow | undefined;
    return maybeAccount(row);
  }

  async findUser(name: string): Promise<(Account & { passwordHash: string | null }) | undefined> {
    const row = this.db
      .prepare(`SELECT ${USER_COLUMNS}, u.password_hash FROM users u WHERE u.name = ?`)
      .get(name) as UserRow | undefined;
    return accountWithHash(row);
  }

  async listUsers(): Promise<Account[]> {
    const rows = this.db.prepare(`SELECT ${USER_COLUMNS} FROM users u ORDER BY u.name`).all() as UserRow[];
    return rows.map(rowToAccount);
  }

  async setDisabled(name: string, disabled: boolean): Promise<boolean> {
    return this.db.transaction(() => {
      const id = this.db.prepare('SELECT id FROM users WHERE name = ?').pluck().get(name) as
        string | undefined;
      if (!id) return false;
      this.db.prepare('UPDATE users SET disabled = ? WHERE id = ?').run(disabled ? 1 : 0, id);
      if (disabled) this.db.prepare('DELETE FROM sessions WHERE user_id = ?').run(id);
      return true;
    })();
  }

  async setPassword(name: string, passwordHash: string, keepSessionSha256 = ''): Promise<boolean> {
    return this.db.transaction(() => {
      const id = this.db.prepare('SELECT id FROM users WHERE name = ?').pluck().get(name) as
        string | undefined;
      if (!id) return false;
      this.db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, id);
      this.db
        .prepare('DELETE FROM sessions WHERE user_id = ? AND token_sha256 <> ?')
        .run(id, keepSessionSha256);
      return true;
    })();
  }

  async addSession(userId: string, tokenSha256: string, expiresAt: string): Promise<void> {
    const now = new Date().toISOString();
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now);
      this.db
        .prepare('INSERT INTO sessions (token_sha256, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
        .run(tokenSha256, userId, now, expiresAt);
    })();
  }

  async sessionUser(tokenSha256: string): Promise<Account | undefined> {
    const row = this.db
      .prepare(
        `SELECT ${USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_sha256 = ? AND s.expires_at > ? AND u.disabled = 0`,
      )
      .get(tokenSha256, new Date().toISOString()) as UserRow | undefined;
    return maybeAccount(row);
  }

  async deleteSession(tokenSha256: string): Promise<void> {
    this.db.prepare('DELETE FROM sessions WHERE token_sha256 = ?').run(tokenSha256);
  }

  async addToken(userId: string, token: { id: string; sha256: string; name: string }): Promise<ApiToken> {
    this.db
      .prepare('INSERT INTO api_tokens (id, token_sha256, user_id, name, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(token.id, token.sha256, userId, token.name, new Date().toISOString());
    return this.db
      .prepare(`SELECT ${TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`)
      .get(token.id) as ApiToken;
  }

  async tokenUser(tokenSha256: string): Promise<Account | undefined> {
    const row = this.db
      .prepare(
        `SELECT ${USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_sha256 = ? AND t.revoked_at IS NULL AND u.disabled = 0`,
      )
      .get(tokenSha256) as UserRow | undefined;
    return maybeAccount(row);
  }

  async listTokens(): Promise<ApiToken[]> {
    return this.db
      .prepare(
        `SELECT ${TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.created_at`,
      )
      .all() as ApiToken[];
  }

  async revokeToken(id: string): Promise<boolean> {
    const info = this.db
      .prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(new Date().toISOString(), id);
    return info.changes > 0;
  }

  async audit(entry: NewAuditEntry): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO audit_log (at, actor, action, target_type, target_id, detail, ip)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...auditValues(entry));
  }

  async auditEntries(filter: AuditFilter): Promise<{ entries: AuditEntry[]; total: number }> {
    const { where, params } = auditWhere(filter);
    const total = this.db.prepare(`SELECT count(*) FROM audit_log ${where}`).pluck().get(params) as number;
    const entries = this.db
      .prepare(
        `SELECT id, at, actor, action, target_type AS targetType, target_id AS targetId, detail, ip
         FROM audit_log ${where} ORDER BY id DESC LIMIT @limit OFFSET @offset`,
      )
      .all({ ...params, limit: filter.limit, offset: filter.offset }) as AuditEntry[];
    return { entries, total };
  }
}
