/**
 * Accounts, sessions, API tokens and the audit trail in the PostgreSQL case database (accounts.ts): every
 * replica sees the same sessions, so a user stays signed in whichever replica answers.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
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
import { isoText } from './postgres-rows.js';
import { inTransaction } from './postgres-transaction.js';

const USER_COLUMNS = `u.id, u.name, u.display_name, u.role, u.clinic, u.disabled,
  ${isoText('u.created_at')} AS created_at`;
const TOKEN_COLUMNS = `t.id, u.name AS "user", t.name, ${isoText('t.created_at')} AS "createdAt",
  ${isoText('t.revoked_at')} AS "revokedAt"`;

export class PostgresAccountStore implements AccountStore {
  constructor(private readonly pool: pg.Pool) {}

  async countUsers(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
    return rows[0].n;
  }

  async addUser(user: NewAccount, options: { onlyIfNone?: boolean } = {}): Promise<Account | undefined> {
    const params = userValues(randomUUID(), user);
    if (!options.onlyIfNone) {
      const { rows } = await this.pool.query<UserRow>(
        `INSERT INTO users AS u (id, name, display_name, role, clinic, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING ${USER_COLUMNS}`,
        params,
      );
      return maybeAccount(rows[0]);
    }
    // The first user: a lock on the table makes "none yet" and the insert one step across replicas.
    return inTransaction(this.pool, async (client) => {
      await client.query('LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE');
      const { rows } = await client.query<UserRow>(
        `INSERT INTO users AS u (id, name, display_name, role, clinic, password_hash, created_at)
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM users)
         ON CONFLICT DO NOTHING RETURNING ${USER_COLUMNS}`,
        params,
      );
      return maybeAccount(rows[0]);
    });
  }

  async findUser(name: string): Promise<(Account & { passwordHash: string | null }) | undefined> {
    const { rows } = await this.pool.query<UserRow>(
      `SELECT ${USER_COLUMNS}, u.password_hash FROM users u WHERE lower(u.name) = lower($1)`,
      [name],
    );
    return accountWithHash(rows[0]);
  }

  async listUsers(): Promise<Account[]> {
    const { rows } = await this.pool.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM users u ORDER BY lower(u.name) COLLATE "C"`,
    );
    return rows.map(rowToAccount);
  }

  async setDisabled(name: string, disabled: boolean): Promise<boolean> {
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH u AS (UPDATE users SET disabled = $2 WHERE lower(name) = lower($1) RETURNING id),
         s AS (DELETE FROM sessions WHERE $2 AND user_id IN (SELECT id FROM u))
       SELECT id FROM u`,
      [name, disabled],
    );
    return rows.length > 0;
  }

  async setPassword(name: string, passwordHash: string, keepSessionSha256 = ''): Promise<boolean> {
    // One statement: the new hash and the end of the other sessions commit together.
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH u AS (UPDATE users SET password_hash = $2 WHERE lower(name) = lower($1) RETURNING id),
         s AS (DELETE FROM sessions WHERE user_id IN (SELECT id FROM u) AND token_sha256 <> $3)
       SELECT id FROM u`,
      [name, passwordHash, keepSessionSha256],
    );
    return rows.length > 0;
  }

  async addSession(userId: string, tokenSha256: string, expiresAt: string): Promise<void> {
    await this.pool.query('DELETE FROM sessions WHERE expires_at <= now()');
    await this.pool.query(
      'INSERT INTO sessions (token_sha256, user_id, created_at, expires_at) VALUES ($1, $2, now(), $3)',
      [tokenSha256, userId, expiresAt],
    );
  }

  async sessionUser(tokenSha256: string): Promise<Account | undefined> {
    const { rows } = await this.pool.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.token_sha256 = $1 AND s.expires_at > now() AND NOT u.disabled`,
      [tokenSha256],
    );
    return maybeAccount(rows[0]);
  }

  async deleteSession(tokenSha256: string): Promise<void> {
    await this.pool.query('DELETE FROM sessions WHERE token_sha256 = $1', [tokenSha256]);
  }

  async addToken(userId: string, token: { id: string; sha256: string; name: string }): Promise<ApiToken> {
    await this.pool.query(
      'INSERT INTO api_tokens (id, token_sha256, user_id, name, created_at) VALUES ($1, $2, $3, $4, now())',
      [token.id, token.sha256, userId, token.name],
    );
    const { rows } = await this.pool.query<ApiToken>(
      `SELECT ${TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`,
      [token.id],
    );
    return rows[0];
  }

  async tokenUser(tokenSha256: string): Promise<Account | undefined> {
    const { rows } = await this.pool.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
       WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND NOT u.disabled`,
      [tokenSha256],
    );
    return maybeAccount(rows[0]);
  }

  async listTokens(): Promise<ApiToken[]> {
    const { rows } = await this.pool.query<ApiToken>(
      `SELECT ${TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.created_at`,
    );
    return rows;
  }

  async revokeToken(id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL',
      [id],
    );
    return (rowCount ?? 0) > 0;
  }

  async audit(entry: NewAuditEntry): Promise<void> {
    await this.pool.query(
      `INSERT INTO audit_log (at, actor, action, target_type, target_id, detail, ip)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      auditValues(entry),
    );
  }

  async auditEntries(filter: AuditFilter): Promise<{ entries: AuditEntry[]; total: number }> {
    const conds = auditConditions(filter);
    const params = conds.map((c) => c.value);
    const where = conds.length ? `WHERE ${conds.map((c, i) => `${c.column} = $${i + 1}`).join(' AND ')}` : '';
    const n = params.length;
    const [count, page] = await Promise.all([
      this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log ${where}`, params),
      this.pool.query<AuditEntry>(
        `SELECT id::int AS id, ${isoText('at')} AS at, actor, action, target_type AS "targetType",
           target_id AS "targetId", detail, ip
         FROM audit_log ${where} ORDER BY id DESC LIMIT $${n + 1} OFFSET $${n + 2}`,
        [...params, filter.limit, filter.offset],
      ),
    ]);
    return { entries: page.rows, total: count.rows[0].n };
  }
}
