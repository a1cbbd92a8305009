import { statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { API, app, dataDir, freshAppPerTest, start } from '../testing/app.js';
import { multipart, solidJpeg } from '../testing/server.js';

freshAppPerTest();

async function upload(headers: Record<string, string> = {}) {
  const body = await multipart([{ name: 'a.jpg', bytes: await solidJpeg(40, 40, [200, 30, 30]) }]);
  return app.inject({
    method: 'POST',
    url: `${API}/predict`,
    payload: body.payload,
    headers: { ...body.headers, ...headers },
  });
}

/** A raw HTTP exchange on a real socket: what came back and how long until the server closed it. */
function rawExchange(
  port: number,
  head: string,
  body: Buffer | string,
  waitMs: number,
): Promise<{ text: string; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(Buffer.concat([Buffer.from(head), Buffer.from(body)])),
    );
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedAfterMs: null });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedAfterMs: Date.now() - t0 });
    });
  });
}

function getWithHost(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ port, host: '127.0.0.1', path: `${API}/cases`, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Host and Origin', () => {
  it('refuses a foreign Host (DNS rebinding) with 403, on every route but the probes', async () => {
    await start();
    const evil = await app.inject({ url: `${API}/cases`, headers: { host: 'evil.example' } });
    expect(evil.statusCode).toBe(403);
    expect(evil.json()).toMatchObject({ error: 'forbidden_host' });
    expect((await app.inject({ url: '/', headers: { host: 'evil.example:3000' } })).statusCode).toBe(403);
    for (const host of ['localhost', '127.0.0.1:3000', '[::1]:3000'])
      expect((await app.inject({ url: `${API}/cases`, headers: { host } })).statusCode, host).toBe(200);
    // A load balancer probes by IP: health and readiness answer whatever the Host.
    expect((await app.inject({ url: `${API}/health`, headers: { host: '10.1.2.3:3000' } })).statusCode).toBe(
      200,
    );
  });

  it('takes ALLOWED_HOSTS as configured: a name with any port or a name:port exactly', async () => {
    await start({ allowedHosts: ['hv.example.org', 'lab.local:8443'] });
    const status = async (host: string) =>
      (await app.inject({ url: `${API}/cases`, headers: { host } })).statusCode;
    expect(await status('hv.example.org')).toBe(200);
    expect(await status('HV.example.org:443')).toBe(200);
    expect(await status('lab.local:8443')).toBe(200);
    expect(await status('lab.local:8080')).toBe(403);
    expect(await status('localhost')).toBe(403);
  });

  it('on a real socket, the default list is localhost and the listen address on the listening port', async () => {
    await start();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    expect(await getWithHost(port, `localhost:${port}`)).toBe(200);
    expect(await getWithHost(port, `127.0.0.1:${port}`)).toBe(200);
    expect(await getWithHost(port, `127.0.0.1:${port + 1}`)).toBe(403);
    expect(await getWithHost(port, `evil.example:${port}`)).toBe(403);
  });

  it('refuses a cross-origin POST, PATCH and DELETE (CSRF) with 403 and stores nothing', async () => {
    await start();
    const cross = await upload({ origin: 'http://evil.example' });
    expect(cross.statusCode).toBe(403);
    expect(cross.json()).toMatchObject({ error: 'cross_origin' });
    expect((await upload({ origin: 'null' })).statusCode).toBe(403);
    expect((await upload({ 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    expect((await app.inject({ url: `${API}/cases` })).json()).toMatchObject({ total: 0 });

    const ok = await upload({ origin: 'http://localhost:3000', 'sec-fetch-site': 'same-origin' });
    expect(ok.statusCode).toBe(200);
    const id = (ok.json() as { cases: { id: string }[] }).cases[0].id;
    const review = { reviewLabel: 'lymphocyte', reviewer: 'Dr Ana' };
    const patch = (origin?: string) =>
      app.inject({
        method: 'PATCH',
        url: `${API}/cases/${id}`,
        payload: review,
        headers: origin ? { origin } : {},
      });
    expect((await patch('https://evil.example')).statusCode).toBe(403);
    expect((await patch()).statusCode).toBe(200); // a script or curl: no Origin
    const del = await app.inject({
      method: 'DELETE',
      url: `${API}/cases/${id}`,
      headers: { origin: 'http://evil.example' },
    });
    expect(del.statusCode).toBe(403);
    // A cross-origin GET is not refused by the Origin check (it changes nothing; the browser withholds the reply).
    expect(
      (await app.inject({ url: `${API}/cases/${id}`, headers: { origin: 'http://evil.example' } }))
        .statusCode,
    ).toBe(200);
  });

  it('a CLI or curl POST without Origin works', async () => {
    await start();
    expect((await upload()).statusCode).toBe(200);
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After past the per-IP budget; predict has its own, stricter one', async () => {
    await start({ rateLimits: { max: 3, predictMax: 1, windowMs: 60_000 } });
    expect((await upload()).statusCode).toBe(200);
    const second = await upload();
    expect(second.statusCode).toBe(429);
    expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
    expect(second.json()).toMatchObject({ error: 'too_many_requests' });
    // Reads are counted apart from uploads.
    for (let i = 0; i < 3; i++) expect((await app.inject({ url: `${API}/cases` })).statusCode).toBe(200);
    const over = await app.inject({ url: `${API}/cases` });
    expect(over.statusCode).toBe(429);
    expect(over.headers['retry-after']).toBeDefined();
  });

  it('the defaults are far above what the UI and the tests send', async () => {
    await start();
    const replies = await Promise.all(Array.from({ length: 300 }, () => app.inject({ url: `${API}/cases` })));
    expect(replies.every((r) => r.statusCode === 200)).toBe(true);
  });
});

describe('whole-request limit', () => {
  it('refuses an upload whose Content-Length is over the limit before reading it (413), chunked with 411', async () => {
    await start({ maxRequestBytes: 300 });
    const big = await upload();
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ error: 'request_too_large' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    // 1 GB declared, none of it sent: refused at once and the connection closed, nothing waited for.
    const declared = await rawExchange(
      port,
      `POST ${API}/predict HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1073741824\r\n\r\n`,
      '--x\r\n',
      5000,
    );
    expect(declared.text).toMatch(/^HTTP\/1.1 413/);
    expect(declared.closedAfterMs).not.toBeNull();
    const chunked = await rawExchange(
      port,
      `POST ${API}/predict HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n`,
      '4\r\n--x\r\n',
      5000,
    );
    expect(chunked.text).toMatch(/^HTTP\/1.1 411/);
  });
});

describe('refusals on a real socket', () => {
  it('closes the connection of a refused upload at once instead of waiting for its body (429)', async () => {
    await start({ rateLimits: { max: 100, predictMax: 1, windowMs: 60_000 }, requestTimeoutMs: 60_000 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const head = `POST ${API}/predict HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n`;
    const first = rawExchange(port, head, '--x\r\n', 1500);
    await new Promise((r) => setTimeout(r, 200));
    const second = await rawExchange(port, head, '--x\r\n', 3000);
    expect(second.text).toMatch(/^HTTP\/1.1 429/);
    expect(second.text).toMatch(/retry-after: \d+/i);
    expect(second.closedAfterMs).not.toBeNull();
    expect(second.closedAfterMs!).toBeLessThan(1000);
    expect((await first).closedAfterMs).toBeNull(); // the first is within budget: still waiting for its body
  });
});

describe('timeouts (real sockets)', () => {
  it('cuts off a stalled body and a Content-Length larger than the body, and serves others meanwhile', async () => {
    const timeout = 600;
    await start({ requestTimeoutMs: timeout });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const head = (length: number) =>
      `POST ${API}/predict HTTP/1.1\r\nHost: localhost:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: ${length}\r\n\r\n`;
    const part =
      '--x\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n';
    const stalls = Array.from({ length: 20 }, () =>
      rawExchange(port, head(100_000), `${part}\xff\xd8`, 10 * timeout),
    );
    const declaredTooMuch = rawExchange(port, head(500), part, 10 * timeout);
    // Another client is served while the slow ones hold their connections.
    const t0 = Date.now();
    const health = await fetch(`http://127.0.0.1:${port}${API}/health`);
    expect(health.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(timeout);
    for (const r of [...(await Promise.all(stalls)), await declaredTooMuch]) {
      expect(r.closedAfterMs, 'released by the server').not.toBeNull();
      expect(r.closedAfterMs!).toBeLessThan(timeout * 2 + 500);
      expect(r.text).toMatch(/^HTTP\/1.1 408|^$/);
    }
    expect((await fetch(`http://127.0.0.1:${port}${API}/cases`)).status).toBe(200);
  });
});

describe('timeouts (injected requests)', () => {
  it('leaves an answered injected request alone when its deadline passes (its socket is a stand-in)', async () => {
    // Vitest fails the run on an uncaught exception: a deadline left running threw from a timer.
    const timeout = 100;
    await start({ requestTimeoutMs: timeout });
    expect((await upload()).statusCode).toBe(200);
    expect((await app.inject(`${API}/cases`)).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 3 * timeout));
    expect((await app.inject(`${API}/health`)).statusCode).toBe(200);
  });
});

describe('uploads in flight (injected requests)', () => {
  it('neither times out nor aborts an injected request whose body is still arriving (nothing to cut off)', async () => {
    await start({ requestTimeoutMs: 100 });
    const body = await multipart([{ name: 'a.jpg', bytes: await solidJpeg(40, 40, [200, 30, 30]) }]);
    const payload = new PassThrough();
    const reply = app.inject({
      method: 'POST',
      url: `${API}/predict`,
      payload,
      headers: { ...body.headers, 'content-length': String(body.payload.length) },
    });
    payload.write(body.payload.subarray(0, 100));
    await new Promise((r) => setTimeout(r, 300)); // past its deadline
    // A shutdown aborts the uploads of real connections only (the stand-in socket has no destroy).
    expect(app.abortUploads()).toBe(0);
    payload.end(body.payload.subarray(100));
    expect((await reply).statusCode).toBe(200);
  });
});

describe('replies and logs', () => {
  it('logs one line per refused request, without a stack', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    await start({ logger: { level: 'info', stream } });
    const bad = await app.inject({
      method: 'POST',
      url: `${API}/predict`,
      payload: '--x\r\nbroken',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
    });
    expect(bad.statusCode).toBe(400);
    await app.inject({ url: `${API}/cases/not-a-uuid` });
    await app.inject({ url: `${API}/cases`, headers: { host: 'evil.example' } });
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      expect(entry).toMatchObject({ msg: 'request refused', error: expect.any(String) });
      expect(line).not.toMatch(/stack|\n\s+at /);
    }
  });

  it('sends HSTS only to a client that came over TLS (behind a trusted proxy)', async () => {
    await start({ trustProxy: true });
    const plain = await app.inject({ url: `${API}/health` });
    expect(plain.headers['strict-transport-security']).toBeUndefined();
    const tls = await app.inject({ url: `${API}/health`, headers: { 'x-forwarded-proto': 'https' } });
    expect(tls.headers['strict-transport-security']).toMatch(/max-age=\d+/);
  });

  it('writes the database and images readable by owner and group only', async () => {
    await start();
    const r = await upload();
    expect(r.statusCode).toBe(200);
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect(mode(join(dataDir, 'hematovision.db')) & 0o027).toBe(0);
    const { readdirSync } = await import('node:fs');
    const sub = readdirSync(join(dataDir, 'images'))[0];
    const file = readdirSync(join(dataDir, 'images', sub))[0];
    expect(mode(join(dataDir, 'images', sub, file)) & 0o027).toBe(0);
    // Folders too, whatever the process's umask: nothing for others to list.
    for (const dir of ['images', join('images', sub), 'tmp', 'heatmaps']) {
      expect(mode(join(dataDir, dir)) & 0o007).toBe(0);
    }
  });
});
