/**
 * Refusals below Fastify's routes (issue 15, request hygiene): a cap on open connections, and requests that
 * never became a request (a timed-out or malformed head) answered in the API's error shape with one log line.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** Open connections at most (MAX_CONNECTIONS): far below the process's file-handle limit. */
export const DEFAULT_MAX_CONNECTIONS = 512;

/**
 * Caps open connections: one over the cap is closed by Node at once (before any byte is read), so a flood of
 * slow clients cannot use up the file handles the database, images and other clients need. Each refused
 * connection is one log line.
 */
export function limitConnections(app: FastifyInstance, maxConnections: number): void {
  app.server.maxConnections = maxConnections;
  app.server.on('drop', (data?: { remoteAddress?: string }) => {
    app.log.warn(
      { ip: data?.remoteAddress, error: 'too_many_connections', maxConnections },
      'connection refused',
    );
  });
}

const CLIENT_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request_timeout',
    message: 'The request took too long to arrive (REQUEST_TIMEOUT); send it again.',
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers_too_large',
    message: 'The request headers are too large.',
  },
};
const MALFORMED = { status: 400, code: 'malformed_request', message: 'The request is not valid HTTP.' };

/**
 * Fastify's clientErrorHandler: a connection whose request head timed out or could not be parsed gets the
 * API's `{error, message}` with its status, is closed, and is logged as one line (Fastify's own logs it
 * only at trace level). A reset connection is gone: nothing to answer, nothing to log.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal = (err.code && CLIENT_ERRORS[err.code]) || MALFORMED;
  this.log.warn({ ip: socket.remoteAddress, status: refusal.status, error: refusal.code }, 'request refused');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: refusal.code, message: refusal.message });
  // Written, then the connection destroyed (as Node does): after end() alone a client still sending its body
  // kept the half-closed socket open.
  socket.write(
    `HTTP/1.1 ${refusal.status} ${refusal.status === 408 ? 'Request Timeout' : refusal.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
