// The real server process (src/server/main.ts through tsx, the bundled model): graceful SIGTERM with an upload
// open, the data folder lock between two processes, and the file modes it writes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../testing/shared.js';

const MAIN = join(REPO_ROOT, 'src/server/main.ts');

interface Server {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; at: number }>;
}

function startServer(dataDir: string, env: Record<string, string> = { AUTH: 'off' }): Server {
  // One process (node with tsx's loader, not the tsx command, which runs the server in a child of its own).
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: REPO_ROOT,
    // Accounts off by default here (allowed on loopback): the stalled upload below must reach the upload
    // code, not a 401.
    env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d.toString()));
  child.stderr!.on('data', (d) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, at: Date.now() })),
  );
  return { child, output: () => out, exited };
}

async function listeningPort(s: Server, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const m = /at http:\/\/127\.0\.0\.1:(\d+)\//.exec(s.output());
    if (m) return Number(m[1]);
    if (s.child.exitCode !== null) throw new Error(`server exited: ${s.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not start: ${s.output()}`);
}

let dataDir: string;
const running: ChildProcess[] = [];

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-main-'));
});
afterEach(() => {
  for (const c of running.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the server process', () => {
  it('refuses a second server on its data folder, exits within 10 s of SIGTERM with an upload open', async () => {
    const first = startServer(dataDir);
    running.push(first.child);
    const port = await listeningPort(first);

    const second = startServer(dataDir);
    running.push(second.child);
    const refused = await second.exited;
    expect(refused.code).toBe(1);
    expect(second.output()).toContain(`The data folder ${dataDir} is in use by another HematoVision server`);
    expect(second.output()).toContain(`process ${first.child.pid}`);
    expect(second.output()).not.toMatch(/^\s+at /m);

    // The database and folder are not readable by others (umask 027).
    expect(statSync(join(dataDir, 'hematovision.db')).mode & 0o007).toBe(0);

    // An upload that has sent its headers and part of its body, then stalls.
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const socketClosed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      `POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\n` +
        `Content-Length: 5000000\r\n\r\n--x\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n\r\n\xff\xd8`,
    );
    const health = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
    expect(health.status).toBe(200);

    const t0 = Date.now();
    first.child.kill('SIGTERM');
    const { code, at } = await first.exited;
    expect(at - t0).toBeLessThan(10_000);
    expect(code).toBe(0);
    await socketClosed;
    expect(existsSync(join(dataDir, 'server.lock'))).toBe(false);
    expect(first.output()).toMatch(/aborted 1 upload/);
  }, 120_000);

  it('starts with accounts on, printing a one-time setup link that creates the admin', async () => {
    const server = startServer(dataDir, {});
    running.push(server.child);
    const port = await listeningPort(server);
    const t0 = Date.now();
    while (!/#\/setup\?token=/.test(server.output()) && Date.now() - t0 < 5000)
      await new Promise((r) => setTimeout(r, 50));
    const m = /http:\/\/127\.0\.0\.1:(\d+)\/#\/setup\?token=([A-Za-z0-9_-]+)/.exec(server.output());
    expect(m?.[1]).toBe(String(port));
    expect(server.output()).not.toContain('ACCOUNTS ARE OFF');
    const base = `http://127.0.0.1:${port}/api/v1`;
    expect((await fetch(`${base}/cases`)).status).toBe(401);
    const setup = await fetch(`${base}/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token: m![2],
        name: 'admin',
        displayName: 'Lab admin',
        password: 'a long passphrase',
      }),
    });
    expect(setup.status).toBe(201);
    const cookie = setup.headers.get('set-cookie')!.split(';')[0];
    expect((await fetch(`${base}/cases`, { headers: { cookie } })).status).toBe(200);
    server.child.kill('SIGTERM');
    await server.exited;

    // AUTH=off is refused on an address others can reach.
    const open = startServer(dataDir, { AUTH: 'off', HOST: '0.0.0.0' });
    running.push(open.child);
    expect((await open.exited).code).toBe(1);
    expect(open.output()).toMatch(/AUTH=off is allowed only on a loopback address/);
  }, 120_000);
});
