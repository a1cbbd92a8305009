/** The server process (main.ts) with DATABASE_URL: refused unless PostgreSQL; on PostgreSQL, says so. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../testing/postgres.js';
import { REPO_ROOT } from '../testing/shared.js';

notePostgresSkip('server process on PostgreSQL');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts `src/server/main.ts`; resolves with its output once it has printed `until` or exited. */
function server(env: Record<string, string>, until: RegExp) {
  const dataDir = mkdtempSync(join(tmpdir(), 'hv-main-pg-'));
  dirs.push(dataDir);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: '0', DATA_DIR: dataDir, ...env },
  });
  let out = '';
  const done = new Promise<{ code: number | null; out: string }>((resolve) => {
    const check = () => {
      if (until.test(out)) resolve({ code: null, out });
    };
    child.stdout.on('data', (d: Buffer) => ((out += d.toString()), check()));
    child.stderr.on('data', (d: Buffer) => ((out += d.toString()), check()));
    child.on('exit', (code) => resolve({ code, out }));
  });
  return { child, done, dataDir };
}

describe('main.ts and DATABASE_URL', () => {
  it('refuses a DATABASE_URL that is not PostgreSQL, saying what it wants', async () => {
    const { done } = server({ DATABASE_URL: 'mysql://hv:pw@db/hv' }, /$^/);
    const { code, out } = await done;
    expect(code).toBe(1);
    expect(out).toContain('DATABASE_URL must be a PostgreSQL URL');
    expect(out).not.toContain('pw@');
  });

  it.skipIf(!hasPostgres)('serves from PostgreSQL, naming the database without its password', async () => {
    const db = await freshDatabase('main_pg');
    const url = new URL(db.url);
    url.password = 'not-printed';
    const { child, done, dataDir } = server({ DATABASE_URL: url.toString() }, /HematoVision .* at http/);
    try {
      const { out } = await done;
      expect(out).toMatch(/data in PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/main_pg/);
      expect(out).not.toContain('not-printed');
      expect(readdirSync(dataDir)).toEqual(['tmp']); // no SQLite database, no image folders
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await db.drop();
    }
  });
});
