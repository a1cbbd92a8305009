import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AppOptions } from './app.js';
import { fakeVision } from '../testing/server.js';

let dataDir: string;
let app: FastifyInstance | undefined;
let lines: Record<string, unknown>[];
const sockets: Socket[] = [];

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-conn-'));
  lines = [];
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await app?.close();
  app = undefined;
  rmSync(dataDir, { recursive: true, force: true });
});

async function listen(opts: Partial<AppOptions> = {}): Promise<number> {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  app = await buildApp({
    vision: fakeVision(),
    dataDir,
    webDir: join(dataDir, 'no-web'),
    logger: { level: 'info', stream },
    ...opts,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/** Opens a socket, writes `head` and resolves with what came back once the server closed it (or after waitMs). */
function exchange(port: number, head: string, waitMs = 5_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    sockets.push(socket);
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => resolve({ text, closed: false }), waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

describe('connection limit', () => {
  it('closes a connection over MAX_CONNECTIONS at once, logs it once, and serves again when one frees', async () => {
    const port = await listen({ maxConnections: 3 });
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
      held.push(s);
      await new Promise<void>((r) => s.once('connect', () => r()));
    }
    // Let the server accept the three before the fourth arrives.
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const over = await exchange(port, 'GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(over.closed).toBe(true);
    expect(over.text).toBe('');
    expect(Date.now() - t0).toBeLessThan(2_000);
    const refused = lines.filter((l) => l.msg === 'connection refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ error: 'too_many_connections', maxConnections: 3 });

    held[0].destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await fetch(`http://127.0.0.1:${port}/api/v1/health`, { headers: { connection: 'close' } });
    expect(again.status).toBe(200);
  });
});

describe('requests that never became one', () => {
  it('answers a malformed request head with the API error shape, one log line and no path', async () => {
    const port = await listen();
    const r = await exchange(port, 'GARBAGE /\x00 HTTP/9\r\n\r\n');
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1.1 400 /);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as Record<string, string>;
    expect(body).toEqual({ error: 'malformed_request', message: expect.any(String) });
    const refused = lines.filter((l) => l.msg === 'request refused');
    expect(refused).toEqual([expect.objectContaining({ status: 400, error: 'malformed_request' })]);
    expect(JSON.stringify(lines)).not.toMatch(/"stack"|\/src\//);
  });

  it('answers a head that never finishes with 408 in the API error shape, logged once', async () => {
    const port = await listen({ requestTimeoutMs: 300 });
    const r = await exchange(port, 'GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1.1 408 /);
    expect(r.text).toContain('"error":"request_timeout"');
    expect(lines.filter((l) => l.msg === 'request refused')).toEqual([
      expect.objectContaining({ status: 408, error: 'request_timeout' }),
    ]);
  });
});
