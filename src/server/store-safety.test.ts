import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AppOptions } from './app.js';
import { LOCK_FILE } from './data-lock.js';
import { resourceError } from './http-errors.js';
import { openStore } from './store/index.js';
import { fakeVision, multipart, solidJpeg } from '../testing/server.js';

const API = '/api/v1';

let dataDir: string;
const apps: FastifyInstance[] = [];

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-safety-'));
});
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(opts: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  const app = await buildApp({
    auth: 'off',
    vision: fakeVision(),
    dataDir,
    webDir: join(dataDir, 'no-web'),
    ...opts,
  });
  apps.push(app);
  return app;
}

async function predict(app: FastifyInstance) {
  const body = await multipart([{ name: 'a.jpg', bytes: await solidJpeg(40, 40, [200, 30, 30]) }]);
  return app.inject({ method: 'POST', url: `${API}/predict`, ...body });
}

/** The pid of a process that has exited (its number is free, not ours). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('the data folder lock', () => {
  it('refuses a second server on the same folder, naming the folder and the holder', async () => {
    const first = await start();
    await expect(start()).rejects.toThrow(new RegExp(`${dataDir}.*in use by another HematoVision server`));
    // The first one is unharmed.
    expect((await predict(first)).statusCode).toBe(200);
    await first.close();
    apps.length = 0;
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    await start(); // free again once the first has stopped
  });

  it('refuses a server in another process, naming its pid', async () => {
    // A live process holds the lock: this test's parent, which is not us.
    const other = { pid: process.ppid, host: (await import('node:os')).hostname(), startedAt: 'x' };
    writeFileSync(join(dataDir, LOCK_FILE), JSON.stringify(other));
    await expect(start()).rejects.toThrow(new RegExp(`${dataDir} is in use .*process ${process.ppid}`));
    expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.ppid });
  });

  it('takes over a stale lock left by a process that is gone (kill -9), and one with our own pid', async () => {
    const host = (await import('node:os')).hostname();
    for (const pid of [deadPid(), process.pid]) {
      writeFileSync(join(dataDir, LOCK_FILE), JSON.stringify({ pid, host, startedAt: 'then' }));
      const app = await start();
      expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
      expect((await predict(app)).statusCode).toBe(200);
      await app.close();
      apps.length = 0;
    }
  });
});

describe('leftovers of a killed server', () => {
  it('removes every temp file in tmp/ when a server takes the folder, however recent', async () => {
    const first = await start();
    await first.close();
    apps.length = 0;
    const leftover = join(dataDir, 'tmp', 'upload-cut-off-by-kill-9');
    writeFileSync(leftover, 'half an upload');
    await start();
    expect(existsSync(leftover)).toBe(false);
  });
});

describe('integrity check at start', () => {
  it('refuses a file that is not a database with a clear message and leaves it untouched', async () => {
    const db = join(dataDir, 'hematovision.db');
    writeFileSync(db, 'these are not the bytes of a SQLite database, '.repeat(200));
    const before = readFileSync(db);
    await expect(start()).rejects.toMatchObject({
      code: 'corrupt_database',
      message: expect.stringMatching(/hematovision\.db is damaged .*will not start.*backup/),
    });
    expect(readFileSync(db).equals(before)).toBe(true);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  });

  it('refuses a database with damaged pages', async () => {
    const app = await start();
    for (let i = 0; i < 30; i++) expect((await predict(app)).statusCode).toBe(200);
    await app.close();
    apps.length = 0;
    const db = join(dataDir, 'hematovision.db');
    const pageSize = 4096;
    expect(statSync(db).size).toBeGreaterThan(3 * pageSize);
    // Scribble over the b-tree page headers of pages 2 and 3 (the tables' roots).
    const fd = openSync(db, 'r+');
    for (const page of [1, 2]) writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, page * pageSize);
    closeSync(fd);
    await expect(start()).rejects.toMatchObject({ code: 'corrupt_database' });
    await expect(openStore({ dataDir })).rejects.toThrow(/damaged/);
  });
});

describe('GET /ready', () => {
  it('is ready with a writable database, enough disk and the model; health stays alive', async () => {
    const app = await start();
    const r = await app.inject({ url: `${API}/ready` });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({
      status: 'ready',
      checks: {
        database: { ok: true },
        disk: { ok: true, freeBytes: expect.any(Number) },
        model: { ok: true },
      },
    });
  });

  it('is not ready (503) when free space is below the threshold, while health says alive', async () => {
    const app = await start({ minFreeBytes: Number.MAX_SAFE_INTEGER });
    const r = await app.inject({ url: `${API}/ready` });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({
      status: 'not_ready',
      checks: { disk: { ok: false }, database: { ok: true } },
    });
    expect((await app.inject({ url: `${API}/health` })).statusCode).toBe(200);
  });

  it('is not ready when the database cannot be written', async () => {
    const app = await start();
    const store = app.caseStore as unknown as { checkWritable: () => Promise<void> };
    store.checkWritable = () =>
      Promise.reject(
        Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY' }),
      );
    const r = await app.inject({ url: `${API}/ready` });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({
      checks: { database: { ok: false, message: expect.stringContaining('SQLITE_READONLY') } },
    });
  });
});

describe('resource exhaustion', () => {
  it('answers 503 with Retry-After and no path when storing hits ENOSPC, and stores nothing', async () => {
    const app = await start();
    const store = app.caseStore;
    const add = store.add.bind(store);
    store.add = async () => {
      const err = Object.assign(
        new Error(`ENOSPC: no space left on device, write '${join(dataDir, 'tmp', 'x.part')}'`),
        {
          code: 'ENOSPC',
          errno: -28,
          syscall: 'write',
          path: join(dataDir, 'tmp', 'x.part'),
        },
      );
      throw err;
    };
    const r = await predict(app);
    expect(r.statusCode).toBe(503);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect(r.json()).toMatchObject({
      error: 'unavailable',
      message: expect.stringContaining('out of disk space'),
    });
    expect(r.body).not.toContain(dataDir);
    expect(r.body).not.toContain(tmpdir());
    store.add = add;
    expect((await app.inject({ url: `${API}/cases` })).json()).toMatchObject({ total: 0 });
    expect((await predict(app)).statusCode).toBe(200);
  });

  it('maps EMFILE, ENFILE and EDQUOT to 503 too; other system errors stay 500 without their message', async () => {
    for (const code of ['EMFILE', 'ENFILE', 'EDQUOT', 'ENOSPC'])
      expect(resourceError(Object.assign(new Error('x /secret/path'), { code }))).toMatchObject({
        status: 503,
      });
    expect(resourceError(Object.assign(new Error('x'), { code: 'EACCES' }))).toBeUndefined();
    const app = await start();
    app.caseStore.add = async () => {
      throw Object.assign(new Error(`EACCES: permission denied, open '${dataDir}/images/ab'`), {
        code: 'EACCES',
        syscall: 'open',
        statusCode: 400,
      });
    };
    const r = await predict(app);
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toContain(dataDir);
  });
});
