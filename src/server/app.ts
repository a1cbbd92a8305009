import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { HematoError, InvalidImageError } from '../errors.js';
import { checkInput } from '../imaging/decode.js';
import { differential } from '../model/differential.js';
import { checkDomain } from '../model/domain.js';
import type { Box } from '../imaging/types.js';
import type { ImagePrediction, Prediction } from '../model/types.js';
import type { HematoVision } from '../pipeline.js';
import { csvRow, type CsvValue } from './csv.js';
import { routeSchemas, sharedSchemas } from './schemas.js';
import { CaseStore, type CaseFilter, type StoredCase } from './store.js';

export interface AppOptions {
  vision: HematoVision;
  /** Folder of the case database and stored images (created if missing). */
  dataDir: string;
  /** Built UI (vite build output). Default: dist/web of the repository. */
  webDir?: string;
  logger?: boolean;
  /** Images per predict request (default 50). */
  maxFiles?: number;
  /** Test-time augmentation by default (a request's `?tta=` overrides it; the model must be calibrated for it). */
  tta?: boolean;
  /** Bytes per uploaded image (default 20 MB). */
  maxFileBytes?: number;
  /**
   * Decoded pixels per analyzeBatch call (default 64 M): the images of a batch are decoded together, so this
   * bounds memory while keeping the batch speed-up for ordinary images.
   */
  batchPixels?: number;
}

type PredictItem = ReturnType<typeof caseJson> | { file: string; error: string; message: string };

const MAX_BATCH_IMAGES = 16;
/** Upload bytes of one request held in memory between the header check and analysis. */
const KEEP_UPLOAD_BYTES = 64 * 1024 * 1024;

declare module 'fastify' {
  interface FastifyInstance {
    caseStore: CaseStore;
  }
}

const API = '/api/v1';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

const NO_UI_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HematoVision</title></head>
<body><h1>HematoVision</h1>
<p>The web interface has not been built. Run <code>npm run build:web</code> and reload this page.</p>
<p>The REST API is available at <a href="${API}/openapi.json">${API}/openapi.json</a>.</p>
</body></html>
`;

/** Builds the HTTP server: REST API v1 under /api/v1, the UI from webDir at /. The store closes with the app. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const store = CaseStore.open(options.dataDir);
  try {
    return await assemble(options, store);
  } catch (err) {
    store.close();
    throw err;
  }
}

async function assemble(options: AppOptions, store: CaseStore): Promise<FastifyInstance> {
  const { vision } = options;
  const maxFiles = options.maxFiles ?? 50;
  const tta = options.tta === true;
  if (tta && !vision.hasTta)
    throw new HematoError(
      'Test-time augmentation needs a model calibrated for it (testTimeAugmentation).',
      'bad_config',
    );
  const maxFileBytes = options.maxFileBytes ?? 20 * 1024 * 1024;
  const batchPixels = options.batchPixels ?? 64_000_000;
  const webDir = resolve(options.webDir ?? join(REPO_ROOT, 'dist/web'));
  const classes = vision.card.classes;

  // Unknown query parameters are refused (400), not silently dropped: a misspelt filter must not return everything.
  const app = Fastify({
    logger: options.logger ?? false,
    ajv: { customOptions: { removeAdditional: false } },
  });
  app.decorate('caseStore', store);
  app.addHook('onClose', async () => store.close());

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, body } = errorReply(err, request, { maxFiles, maxFileBytes });
    if (status >= 500) request.log.error({ err }, 'request failed');
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `Nothing here: ${request.method} ${request.url}` }),
  );

  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", 'blob:', 'data:'],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
  });
  await app.register(multipart, {
    // An oversize file is kept truncated and refused alone (predict), so the rest of its batch goes on.
    throwFileSizeLimit: false,
    limits: { fileSize: maxFileBytes, files: maxFiles, fields: 20, parts: maxFiles + 20 },
  });
  for (const schema of sharedSchemas) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'HematoVision API',
        version: VERSION,
        description:
          'White-blood-cell classification of stained blood-smear images, and the cases it stored.',
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });

  // Browsable API docs from the same OpenAPI document (scripts and styles are its own files: the CSP holds).
  await app.register(swaggerUi, { routePrefix: `${API}/docs`, uiConfig: { docExpansion: 'list' } });

  const schemas = routeSchemas({ classes, maxFiles, maxFileBytes });

  app.get(`${API}/health`, { schema: schemas.health }, async () => ({
    status: 'ok' as const,
    model: { name: vision.card.name, version: vision.card.version, classes, tta: vision.hasTta },
  }));

  // The card, and how this server runs it: test-time augmentation or not, and the review threshold for that.
  app.get(`${API}/model`, { schema: schemas.model }, async () => ({
    ...vision.card,
    inUse: { tta, reviewThreshold: vision.reviewThreshold(tta) },
  }));

  app.get(`${API}/openapi.json`, { schema: schemas.openapi }, async () => app.swagger());

  app.post(
    `${API}/predict`,
    {
      schema: schemas.predict,
      // The multipart body is streamed to disk, not parsed into request.body: its schema documents the
      // API and the handler enforces it (field name, 1..maxFiles files).
      validatorCompiler: () => () => true,
    },
    async (request) => {
      // Checked before the upload is read: the route's validator is off for the multipart body.
      const useTta = ttaQuery(request.query, tta);
      if (useTta && !vision.hasTta)
        throw new HematoError(
          `Model ${vision.card.name} ${vision.card.version} is not calibrated for test-time augmentation.`,
          'no_tta',
        );
      const files = await receiveImages(request, store.tmpDir, maxFiles);
      const results: PredictItem[] = new Array(files.length);
      const failures: HematoError[] = [];
      const refuse = (i: number, err: HematoError) => {
        failures.push(err);
        results[i] = { file: files[i].name, error: err.code, message: err.message };
      };
      // Header check first (size, format, pixel count): refuses bad files early and sizes the batches.
      // The bytes read for it are kept for analysis up to a budget (one read instead of two per file).
      const sized: { index: number; pixels: number }[] = [];
      const kept = new Map<number, Buffer>();
      let keptBytes = 0;
      for (const [index, f] of files.entries()) {
        try {
          if (f.truncated) throw fileTooLarge(maxFileBytes);
          const bytes = await readFile(f.filepath);
          const head = await checkInput(bytes);
          sized.push({ index, pixels: head.width * head.height });
          if (keptBytes + bytes.length <= KEEP_UPLOAD_BYTES) {
            kept.set(index, bytes);
            keptBytes += bytes.length;
          }
        } catch (err) {
          if (!isImageProblem(err)) throw err;
          refuse(index, err);
        }
      }
      const predictions: ImagePrediction[] = [];
      const created: string[] = [];
      try {
        for (const chunk of pixelChunks(sized, batchPixels, MAX_BATCH_IMAGES)) {
          const inputs = await Promise.all(
            chunk.map((c) => kept.get(c.index) ?? readFile(files[c.index].filepath)),
          );
          for (const c of chunk) kept.delete(c.index);
          // Maps as data only: the PNG is drawn on first request (most heat maps are never looked at).
          const items = await vision.analyzeBatch(inputs, { cams: true, tta: useTta });
          for (const [j, item] of items.entries()) {
            const { index } = chunk[j];
            if (!item.ok) {
              if (!isImageProblem(item.error)) throw item.error;
              refuse(index, item.error);
              continue;
            }
            const { analysis } = item;
            const stored = await store.add({
              file: files[index].name,
              image: inputs[j],
              imageType: sniffImageType(inputs[j]),
              width: analysis.width,
              height: analysis.height,
              model: { name: vision.card.name, version: vision.card.version, tta: useTta },
              prediction: analysis,
              heatmapData: analysis.heatmap,
            });
            created.push(stored.id);
            predictions.push(analysis);
            results[index] = caseJson(stored);
          }
        }
      } catch (err) {
        // All or nothing on a server-side failure: the client never learns these ids.
        for (const id of created) store.delete(id);
        throw err;
      }
      if (created.length === 0) {
        if (failures.length === 1) throw failures[0];
        throw new InvalidImageError(
          `None of the ${files.length} images could be analysed: ` +
            results.map((r) => `${r.file}: ${'message' in r ? r.message : ''}`).join('; '),
          'no_valid_images',
          400,
        );
      }
      const domain = predictions.length > 1 ? checkDomain(predictions) : undefined;
      return {
        cases: results,
        differential: differential(classes, predictions),
        ...(domain ? { domain } : {}),
      };
    },
  );

  app.get<{ Querystring: CaseFilter & { limit: number; offset: number } }>(
    `${API}/cases`,
    { schema: schemas.listCases },
    async (request) => {
      const { cases, total } = store.list(request.query);
      return { cases: cases.map(caseJson), total };
    },
  );

  app.get<{ Querystring: CaseFilter }>(
    `${API}/cases.csv`,
    { schema: schemas.casesCsv },
    async (request, reply) => {
      const known = new Set(classes);
      const probClasses = [...classes, ...store.probabilityClasses().filter((c) => !known.has(c))];
      // One row per located cell (a field's second cell is a row of its own); an image without cells (none
      // found, or a whole-image model) is one row with the cell columns empty.
      const header = [
        'id',
        'file',
        'createdAt',
        'cell',
        'x',
        'y',
        'width',
        'height',
        'label',
        'confidence',
        'needsReview',
        'reviewReasons',
        ...probClasses.map((c) => `p_${c}`),
        'imageLabel',
        'imageNeedsReview',
        'reviewLabel',
        'reviewer',
        'reviewedAt',
        'note',
        'modelName',
        'modelVersion',
        'tta',
      ];
      const textColumns = new Set(['file', 'reviewer', 'note'].map((h) => header.indexOf(h)));
      const lines = [csvRow(header)];
      for (const c of store.iterate(request.query)) {
        const rows: {
          index: number | null;
          box: Box | null;
          p: Omit<Prediction, 'label'> & { label: string | null };
        }[] =
          c.cells.length > 0
            ? c.cells.map((cell, i) => ({ index: i + 1, box: cell.box, p: cell }))
            : [{ index: null, box: null, p: c }];
        for (const { index, box, p } of rows) {
          const row: CsvValue[] = [
            c.id,
            c.file,
            c.createdAt,
            index,
            box?.x,
            box?.y,
            box?.width,
            box?.height,
            p.label,
            p.confidence,
            p.needsReview,
            p.reviewReasons.join(' '),
            ...probClasses.map((k) => p.probabilities[k]),
            c.label,
            c.needsReview,
            c.review?.label,
            c.review?.reviewer,
            c.review?.reviewedAt,
            c.review?.note,
            c.model.name,
            c.model.version,
            c.model.tta,
          ];
          lines.push(csvRow(row, textColumns));
        }
      }
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="hematovision-cases.csv"')
        .send(lines.join(''));
    },
  );

  app.get<{ Params: { id: string } }>(`${API}/cases/:id`, { schema: schemas.getCase }, async (request) => {
    const c = findCase(store, request.params.id);
    return { ...caseJson(c), reviews: store.reviews(c.id) };
  });

  app.get<{ Params: { id: string } }>(
    `${API}/cases/:id/image`,
    { schema: schemas.caseImage },
    async (request, reply) => {
      const c = findCase(store, request.params.id);
      const bytes = await store.readImage(c);
      return reply
        .type(c.imageType)
        .header('content-disposition', contentDisposition(c.file))
        .header('cache-control', 'private, max-age=3600')
        .send(bytes);
    },
  );

  app.get<{ Params: { id: string } }>(
    `${API}/cases/:id/heatmap.png`,
    { schema: schemas.caseHeatmap },
    async (request, reply) => {
      const c = findCase(store, request.params.id);
      if (!c.heatmapSha256 && !c.hasHeatmapData) {
        throw new HematoError(
          `Case ${c.id} has no heat map: ${c.message ?? 'the model produced none for it'}`,
          'not_found',
          404,
        );
      }
      const png = (await store.readHeatmap(c)) ?? (await renderHeatmapOnce(c, request));
      return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(png);
    },
  );

  /** case id → render in flight: concurrent first requests share one render. */
  const rendering = new Map<string, Promise<Buffer>>();
  function renderHeatmapOnce(c: StoredCase, request: FastifyRequest): Promise<Buffer> {
    let job = rendering.get(c.id);
    if (!job) {
      job = renderAndStoreHeatmap(c, request).finally(() => rendering.delete(c.id));
      rendering.set(c.id, job);
    }
    return job;
  }

  async function renderAndStoreHeatmap(c: StoredCase, request: FastifyRequest): Promise<Buffer> {
    const data = store.readHeatmapData(c.id);
    if (!data) throw notFound(c.id); // deleted since it was looked up
    const png = await vision.renderHeatmap(await store.readImage(c), data);
    let attached: StoredCase | undefined | null = null;
    try {
      // Stored so that the next request is a file read.
      attached = await store.attachHeatmap(c.id, png);
    } catch (err) {
      // It can be drawn again from the stored maps: serve it anyway.
      request.log.warn({ err, caseId: c.id }, 'could not store a rendered heat map');
    }
    if (attached === undefined) throw notFound(c.id); // deleted while it was drawn
    return png;
  }

  app.patch<{
    Params: { id: string };
    Body: { reviewLabel: string; reviewer: string; note?: string | null };
  }>(`${API}/cases/:id`, { schema: schemas.reviewCase }, async (request) => {
    const { reviewLabel, reviewer, note } = request.body;
    const updated = store.addReview(request.params.id, {
      label: reviewLabel,
      reviewer: reviewer.trim(),
      note: note ?? '',
    });
    if (!updated) throw notFound(request.params.id);
    return caseJson(updated);
  });

  app.delete<{ Params: { id: string } }>(
    `${API}/cases/:id`,
    { schema: schemas.deleteCase },
    async (request, reply) => {
      if (!store.delete(request.params.id)) throw notFound(request.params.id);
      return reply.code(204).send();
    },
  );

  if (existsSync(join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, { root: webDir, prefix: '/', index: 'index.html' });
  } else {
    app.get('/', { schema: { hide: true, response: { 200: { type: 'string' } } } }, async (_request, reply) =>
      reply.type('text/html; charset=utf-8').send(NO_UI_PAGE),
    );
  }

  await app.ready();
  return app;
}

interface ReceivedFile {
  name: string;
  filepath: string;
  /** Cut at the size limit: refused without being read. */
  truncated: boolean;
}

/** Streams the upload to temp files (removed after the reply) and checks field name and count. */
async function receiveImages(
  request: FastifyRequest,
  tmpdir: string,
  maxFiles: number,
): Promise<ReceivedFile[]> {
  if (!request.isMultipart()) {
    throw new HematoError(
      `Send the images as multipart/form-data in the field "images" (got ${request.headers['content-type'] ?? 'no content type'}).`,
      'unsupported_media_type',
      415,
    );
  }
  let saved;
  try {
    saved = await request.saveRequestFiles({ tmpdir });
  } catch (err) {
    // busboy's own parse errors carry no status; they are the client's malformed body.
    if (err instanceof Error && !('statusCode' in err)) {
      throw new HematoError(
        `The upload is not valid multipart/form-data: ${err.message}.`,
        'invalid_multipart',
        400,
      );
    }
    throw err;
  }
  const wrong = saved.files.find((f) => f.fieldname !== 'images');
  if (wrong) {
    throw new HematoError(
      `Unexpected file field "${wrong.fieldname}": send the images in the multipart field "images".`,
      'wrong_field',
      400,
    );
  }
  if (saved.files.length === 0) {
    const textOnly = saved.values && 'images' in saved.values;
    throw new HematoError(
      textOnly
        ? 'The field "images" holds text, not a file: attach the files (curl -F images=@cell.jpg).'
        : `No image received: attach 1 to ${maxFiles} files in the multipart field "images".`,
      'no_images',
      400,
    );
  }
  return saved.files.map((f, i) => ({
    name: cleanFileName(f.filename, i),
    filepath: f.filepath,
    truncated: f.file.truncated,
  }));
}

/** Consecutive runs within the pixel budget (an image over it goes alone), upload order kept. */
export function pixelChunks<T extends { pixels: number }>(
  items: T[],
  budget: number,
  maxItems: number,
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let pixels = 0;
  for (const item of items) {
    if (current.length > 0 && (pixels + item.pixels > budget || current.length >= maxItems)) {
      chunks.push(current);
      current = [];
      pixels = 0;
    }
    current.push(item);
    pixels += item.pixels;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function isImageProblem(err: unknown): err is HematoError {
  return err instanceof InvalidImageError || (err instanceof HematoError && err.status < 500);
}

function findCase(store: CaseStore, id: string): StoredCase {
  const c = store.get(id);
  if (!c) throw notFound(id);
  return c;
}

function notFound(id: string): HematoError {
  return new HematoError(`No case with id ${id}.`, 'not_found', 404);
}

/** The API view of a stored case. */
export function caseJson(c: StoredCase) {
  return {
    id: c.id,
    file: c.file,
    createdAt: c.createdAt,
    label: c.label,
    confidence: c.confidence,
    probabilities: c.probabilities,
    needsReview: c.needsReview,
    reviewReasons: c.reviewReasons,
    cells: c.cells,
    ...(c.message !== null ? { message: c.message } : {}),
    heatmapUrl: c.heatmapSha256 || c.hasHeatmapData ? `${API}/cases/${c.id}/heatmap.png` : null,
    imageUrl: `${API}/cases/${c.id}/image`,
    width: c.width,
    height: c.height,
    model: c.model,
    review: c.review,
  };
}

/** The stored content type comes from the bytes, never from the client's claim. */
export function sniffImageType(b: Buffer): string {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (
    b.length >= 8 &&
    b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  ) {
    return 'image/png';
  }
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
    return 'image/webp';
  }
  const head = b.toString('latin1', 0, 4);
  if (head === 'II*\0' || head === 'MM\0*') return 'image/tiff';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'image/bmp';
  return 'application/octet-stream';
}

function cleanFileName(name: string | undefined, index: number): string {
  const printable = [...(name ?? '')].filter((ch) => ch >= ' ' && ch !== '\u007f').join('');
  const cleaned = printable.trim().slice(0, 255);
  return cleaned || `image-${index + 1}`;
}

function contentDisposition(file: string): string {
  const ascii = file.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `inline; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(file)}`;
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
};

/** The one refusal of an oversize file, for a whole request or one file of a batch. */
function fileTooLarge(maxFileBytes: number): HematoError {
  const mb = `${Math.round((maxFileBytes / (1024 * 1024)) * 10) / 10} MB`;
  return new HematoError(`Each image must be at most ${mb}.`, 'file_too_large', 413);
}

/** Maps any error to {error, message}; only HematoError and Fastify's 4xx messages reach the client. */
function errorReply(
  err: FastifyError,
  request: FastifyRequest,
  limits: { maxFiles: number; maxFileBytes: number },
): { status: number; body: { error: string; message: string } } {
  if (err instanceof HematoError)
    return { status: err.status, body: { error: err.code, message: err.message } };
  if (err.validation) {
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
  const status = err.statusCode ?? 500;
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

/** `?tta=true|false|1|0` on predict, else the server's default. */
function ttaQuery(query: unknown, fallback: boolean): boolean {
  const v = (query as Record<string, unknown> | undefined)?.tta;
  if (v === undefined) return fallback;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HematoError(`tta must be true or false, not "${String(v)}".`, 'invalid_request');
}
