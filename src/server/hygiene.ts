/**
 * Request hygiene (issue 15): which Host and Origin a request may carry (DNS rebinding, CSRF), the
 * whole-request size limit, uploads in flight (so a shutdown can abort them), HSTS behind TLS and
 * one log line per request.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { Socket, type AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HematoError } from '../errors.js';
import { API_BASE as API } from '../api/index.js';

export interface HygieneOptions {
  /**
   * Host header values accepted: `name` (any port) or `name:port`. Undefined: localhost, 127.0.0.1, [::1]
   * and the listen address (every interface address and the machine name when listening on all of them),
   * on the listening port.
   */
  allowedHosts?: string[];
  /** Bytes of a whole multipart request (all files and fields together); refused from its Content-Length. */
  maxRequestBytes: number;
  /** A body still arriving this long (ms) after its head is cut off: 408, logged once, connection closed. */
  requestTimeoutMs?: number;
}

/** Routes a load balancer or orchestrator probes by IP address: exempt from the Host check, nothing secret. */
const PROBES = new Set([`${API}/health`, `${API}/ready`]);
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

declare module 'fastify' {
  interface FastifyRequest {
    /** The error code the request was refused with, for its log line. */
    rejection?: string;
    /** Its body timed out: refused and logged already, its connection gone. */
    timedOut?: boolean;
  }
  interface FastifyInstance {
    /** Destroys the connections of requests whose body is still arriving (uploads); their count. */
    abortUploads(): number;
  }
}

export async function installHygiene(app: FastifyInstance, opts: HygieneOptions): Promise<void> {
  const hostAllowed = hostMatcher(app, opts.allowedHosts);

  app.addHook('onRequest', async (request, reply) => {
    const url = request.url.split('?')[0];
    if (!PROBES.has(url) && !hostAllowed(request.headers.host)) {
      throw new HematoError(
        `Host "${String(request.headers.host ?? '').slice(0, 100)}" is not served here (set ALLOWED_HOSTS).`,
        'forbidden_host',
        403,
      );
    }
    if (STATE_CHANGING.has(request.method)) checkOrigin(request, hostAllowed);
    if (request.headers['content-type']?.toLowerCase().startsWith('multipart/')) {
      checkRequestSize(request, reply, opts.maxRequestBytes);
    }
  });

  trackUploads(app, opts.requestTimeoutMs);

  // HSTS only when the client reached us over TLS (directly, or through a trusted proxy's X-Forwarded-Proto):
  // over plain HTTP it would tell a browser to expect HTTPS that is not there.
  app.addHook('onSend', async (request, reply) => {
    if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=15552000');
    // A refusal before the body was read (429, 403, 413…): not worth draining, the connection goes.
    if (reply.statusCode >= 400 && request.raw.complete === false) closeAfterReply(request, reply);
  });

  // One line per request (Fastify's own two are off): a refusal says its code, without a stack.
  app.addHook('onResponse', async (request, reply) => {
    if (request.timedOut) return;
    const line = {
      method: request.method,
      url: request.url.slice(0, 200),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
      ip: request.ip,
      ...(request.rejection ? { error: request.rejection } : {}),
    };
    if (reply.statusCode >= 500) request.log.error(line, 'request failed');
    else if (reply.statusCode >= 400) request.log.warn(line, 'request refused');
    else request.log.info(line, 'request');
  });
}

/** Refuses a multipart body that is, or may be, larger than the limit before reading any of it. */
function checkRequestSize(request: FastifyRequest, reply: FastifyReply, maxBytes: number): void {
  const declared = request.headers['content-length'];
  if (declared === undefined) {
    closeAfterReply(request, reply);
    throw new HematoError(
      'Send the upload with a Content-Length header (chunked multipart uploads are not accepted).',
      'length_required',
      411,
    );
  }
  if (Number(declared) > maxBytes) {
    closeAfterReply(request, reply);
    throw new HematoError(
      `The upload is ${mb(Number(declared))}; at most ${mb(maxBytes)} per request: send the images in several requests.`,
      'request_too_large',
      413,
    );
  }
}

/** The unread rest of a refused body is not drained: the connection closes once the reply is out. */
function closeAfterReply(request: FastifyRequest, reply: FastifyReply): void {
  if (reply.raw.headersSent) return;
  reply.header('connection', 'close');
  reply.raw.once('finish', () => {
    if (!request.raw.complete) request.raw.socket?.destroy();
  });
}

function mb(bytes: number): string {
  return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;
}

function checkOrigin(request: FastifyRequest, hostAllowed: (host: string | undefined) => boolean): void {
  // Browsers send both on cross-site requests; CLI and curl send neither and are not a CSRF vector.
  if (request.headers['sec-fetch-site'] === 'cross-site') throw crossOrigin();
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw crossOrigin();
  }
  if (!host || !hostAllowed(host)) throw crossOrigin();
}

function crossOrigin(): HematoError {
  return new HematoError(
    'Cross-origin requests that change data are refused: use the HematoVision page itself, or a script without an Origin header.',
    'cross_origin',
    403,
  );
}

/** A Host header (`name`, `name:port`, `[v6]:port`) split into lower-case name and port ('' when absent). */
export function splitHost(host: string): { name: string; port: string } {
  const h = host.trim().toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(h);
  if (!m) return { name: h, port: '' };
  return { name: m[1], port: m[2] ?? '' };
}

function hostMatcher(app: FastifyInstance, configured?: string[]): (host: string | undefined) => boolean {
  const rules = configured?.map(splitHost);
  let listening: { name: string; port: string }[] | undefined;
  return (host) => {
    if (!host) return false;
    const { name, port } = splitHost(host);
    if (!rules && !listening && app.server.listening) listening = defaultHosts(app);
    const list = rules ?? listening ?? defaultHosts(app);
    return list.some((r) => r.name === name && (r.port === '' || r.port === port));
  };
}

/** localhost and the listen address, on the listening port; before listen (inject) any port. */
function defaultHosts(app: FastifyInstance): { name: string; port: string }[] {
  const address = app.server.listening ? (app.server.address() as AddressInfo | null) : null;
  const port = address ? String(address.port) : '';
  const names = new Set(['localhost', '127.0.0.1', '[::1]']);
  if (address) {
    const any = address.address === '0.0.0.0' || address.address === '::';
    if (any) {
      names.add(hostname().toLowerCase());
      for (const list of Object.values(networkInterfaces()))
        for (const a of list ?? []) names.add(a.family === 'IPv6' ? `[${a.address}]` : a.address);
    } else {
      names.add(address.family === 'IPv6' ? `[${address.address}]` : address.address);
    }
  }
  return [...names].map((name) => ({ name, port }));
}

/**
 * Requests in flight, so a shutdown can drop the uploads still arriving instead of waiting for them; and each
 * body's deadline. Node's own request timeout is checked only every so often (a slow body was cut off after
 * about 1.5× of it), so a body still arriving at its deadline is cut off here, on time.
 */
function trackUploads(app: FastifyInstance, requestTimeoutMs?: number): void {
  const inFlight = new Set<FastifyRequest>();
  const deadlines = new WeakMap<FastifyRequest, NodeJS.Timeout>();
  app.addHook('onRequest', async (request, reply) => {
    // Only a request on a real connection has a socket to cut off or abort: an injected one (app.inject) has a
    // stand-in (an EventEmitter, no destroy) and no client to wait for.
    if (!(request.raw.socket instanceof Socket)) return;
    inFlight.add(request);
    let timer: NodeJS.Timeout | undefined;
    if (requestTimeoutMs && !request.raw.complete) {
      timer = setTimeout(() => cutOff(app, request, reply.raw), requestTimeoutMs);
      timer.unref();
      deadlines.set(request, timer);
    }
    request.raw.once('close', () => {
      clearTimeout(timer);
      inFlight.delete(request);
    });
    request.raw.once('end', () => clearTimeout(timer));
  });
  app.addHook('onResponse', async (request) => {
    // Answered: its body arrived (an injected request never emits 'end' or 'close').
    clearTimeout(deadlines.get(request));
    inFlight.delete(request);
  });
  app.decorate('abortUploads', () => {
    let n = 0;
    for (const request of inFlight) {
      if (request.raw.complete) continue;
      request.raw.socket?.destroy();
      n++;
    }
    return n;
  });
}

/** A body that did not arrive in time: 408 in the API's shape (unless a reply went out), one log line, closed. */
function cutOff(app: FastifyInstance, request: FastifyRequest, response: ServerResponse): void {
  const socket = request.raw.socket;
  if (request.raw.complete || socket.destroyed) return;
  request.timedOut = true;
  // The app's logger: an upload silences its request's own while it is being saved (uploads.ts).
  app.log.warn(
    {
      reqId: request.id,
      method: request.method,
      url: request.url.slice(0, 200),
      status: 408,
      ip: request.ip,
      error: 'request_timeout',
    },
    'request refused',
  );
  if (request.raw.socket.writable && !request.raw.socket.destroyed && !response.headersSent) {
    const body = JSON.stringify({
      error: 'request_timeout',
      message: 'The request took too long to arrive (REQUEST_TIMEOUT); send it again.',
    });
    socket.write(
      `HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  } else {
    socket.destroy();
  }
}

export interface Timeouts {
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/**
 * The HTTP server with its timeouts. Node checks request timeouts every `connectionsCheckingInterval`
 * (30 s by default), so it is tied to the timeout: a stalled body is cut off within about 1.25× of it.
 */
export function httpServerFactory(t: Timeouts) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const server = createServer(
      {
        requestTimeout: t.requestTimeoutMs,
        headersTimeout: Math.min(60_000, t.requestTimeoutMs),
        keepAliveTimeout: t.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.max(50, Math.min(5_000, Math.round(t.requestTimeoutMs / 4))),
      },
      handler,
    );
    server.setTimeout(t.connectionTimeoutMs);
    return server;
  };
}
