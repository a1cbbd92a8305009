/** The one place that turns errors into API replies: `{error, message}` with a status. */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { HematoError, InvalidImageError } from '../errors.js';

export interface UploadLimits {
  maxFiles: number;
  maxFileBytes: number;
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  411: 'length_required',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
};

/** The error handler (every thrown error) and the not-found reply of the app. */
export function installErrorHandlers(app: FastifyInstance, limits: UploadLimits): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, body } = errorReply(err, request, limits);
    // 4xx are the client's and logged as one line (hygiene.ts); a stack only for the server's own failures.
    request.rejection = body.error;
    if (status >= 500 && status !== 503) request.log.error({ err }, 'request failed');
    if (status === 503) reply.header('retry-after', String(RETRY_AFTER_S));
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `Nothing here: ${request.method} ${request.url}` }),
  );
}

/** Seconds a client is asked to wait after a 503 (disk full, out of file descriptors). */
export const RETRY_AFTER_S = 30;

/** System errors that mean the server is out of a resource for now, not that the request or code is wrong. */
const EXHAUSTED = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'ENOMEM', 'SQLITE_FULL']);
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);

/** ENOSPC, EMFILE and the like as a 503 to retry later (the message names no path); else undefined. */
export function resourceError(err: unknown): HematoError | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !EXHAUSTED.has(code)) return undefined;
  const what = DISK_FULL.has(code) ? 'out of disk space' : 'out of file handles';
  return new HematoError(
    `The server is ${what} (${code}) and cannot store this now; nothing was stored. Retry later.`,
    'unavailable',
    503,
  );
}

/** A system error (fs, net): its message carries paths and is never shown to a client. */
export function isSystemError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException | null)?.syscall === 'string';
}

/** The one refusal of an oversize file, for a whole request or one file of a batch. */
export function fileTooLarge(maxFileBytes: number): HematoError {
  const mb = `${Math.round((maxFileBytes / (1024 * 1024)) * 10) / 10} MB`;
  return new HematoError(`Each image must be at most ${mb}.`, 'file_too_large', 413);
}

export function notFound(id: string): HematoError {
  return new HematoError(`No case with id ${id}.`, 'not_found', 404);
}

/** The client's file is at fault (refused alone in a batch), not the server. */
export function isImageProblem(err: unknown): err is HematoError {
  return err instanceof InvalidImageError || (err instanceof HematoError && err.status < 500);
}

/** Maps any error to {error, message}; only HematoError and Fastify's 4xx messages reach the client. */
export function errorReply(
  err: FastifyError,
  request: FastifyRequest,
  limits: UploadLimits,
): { status: number; body: { error: string; message: string } } {
  if (err instanceof HematoError)
    return { status: err.status, body: { error: err.code, message: err.message } };
  const exhausted = resourceError(err);
  if (exhausted) return { status: 503, body: { error: exhausted.code, message: exhausted.message } };
  if (err.validation) {
    if (err.validationContext === 'params' && err.validation[0]?.instancePath === '/index') {
      return {
        status: 400,
        body: { error: 'invalid_cell', message: 'The cell index must be a whole number from 0.' },
      };
    }
    if (err.validationContext === 'params' && request.url.includes('/specimens/')) {
      return {
        status: 400,
        body: { error: 'invalid_id', message: 'A specimen id has 1 to 200 characters.' },
      };
    }
    if (err.validationContext === 'params') {
      const id = (request.params as { id?: string }).id ?? '';
      return {
        status: 400,
        body: { error: 'invalid_id', message: `Malformed case id "${id.slice(0, 100)}": expected a UUID.` },
      };
    }
    const first = err.validation[0];
    const params = first?.params as { allowedValues?: unknown[]; additionalProperty?: string } | undefined;
    const allowed = params?.allowedValues;
    const message = params?.additionalProperty
      ? `Unknown ${err.validationContext === 'querystring' ? 'query parameter' : 'field'} '${params.additionalProperty}'.`
      : allowed
        ? `${err.message}: ${allowed.join(', ')}`
        : err.message;
    return { status: 400, body: { error: 'invalid_request', message } };
  }
  switch (err.code) {
    case 'FST_REQ_FILE_TOO_LARGE': {
      const e = fileTooLarge(limits.maxFileBytes);
      return { status: e.status, body: { error: e.code, message: e.message } };
    }
    case 'FST_FILES_LIMIT':
      return {
        status: 413,
        body: { error: 'too_many_files', message: `At most ${limits.maxFiles} images per request.` },
      };
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return { status: 413, body: { error: 'too_many_parts', message: 'The form has too many fields.' } };
  }
  const status = isSystemError(err) ? 500 : (err.statusCode ?? 500);
  if (status >= 400 && status < 500) {
    return { status, body: { error: STATUS_CODES[status] ?? 'bad_request', message: err.message } };
  }
  return {
    status: 500,
    body: {
      error: 'internal_error',
      message: 'The server failed to handle this request; the error was logged.',
    },
  };
}
