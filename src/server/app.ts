/** Assembles the HTTP server from its parts: error mapping, security headers, uploads, docs, routes. */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { HematoError } from '../errors.js';
import type { HematoVision } from '../pipeline.js';
import { API_BASE as API } from '../api/index.js';
import { CellCrops } from './cell-crops.js';
import { installErrorHandlers } from './http-errors.js';
import { caseRoutes } from './routes/cases.js';
import { predictRoutes } from './routes/predict.js';
import { serviceRoutes } from './routes/service.js';
import { specimenRoutes } from './routes/specimens.js';
import { teachingRoutes } from './routes/teaching.js';
import { webRoutes } from './routes/web.js';
import { routeSchemas, sharedSchemas } from './schemas.js';
import { openStore, type CaseStore } from './store/index.js';

export interface AppOptions {
  vision: HematoVision;
  /**
   * Folder of the case database and stored images (created if missing); with `databaseUrl`, only upload
   * temp files.
   */
  dataDir: string;
  /**
   * `postgres://…`: cases, reviews, images and heat maps in that PostgreSQL database (several replicas can
   * share it) instead of SQLite and files in dataDir.
   */
  databaseUrl?: string;
  /** The bundled teaching set practice asks (manifest.json and images/). Default: teaching/ of the repository. */
  teachingDir?: string;
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

declare module 'fastify' {
  interface FastifyInstance {
    caseStore: CaseStore;
  }
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** Builds the HTTP server: REST API v1 under /api/v1, the UI from webDir at /. The store closes with the app. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const store = await openStore({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
  try {
    return await assemble(options, store);
  } catch (err) {
    await store.close();
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

  // Unknown query parameters are refused (400), not silently dropped: a misspelt filter must not return everything.
  const app = Fastify({
    logger: options.logger ?? false,
    ajv: { customOptions: { removeAdditional: false } },
  });
  app.decorate('caseStore', store);
  app.addHook('onClose', () => store.close());
  installErrorHandlers(app, { maxFiles, maxFileBytes });

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

  const schemas = routeSchemas({ classes: vision.card.classes, maxFiles, maxFileBytes });
  await app.register(serviceRoutes, { prefix: API, vision, schemas, tta });
  await app.register(predictRoutes, {
    prefix: API,
    store,
    vision,
    schemas,
    tta,
    maxFiles,
    maxFileBytes,
    batchPixels,
  });
  const crops = new CellCrops(store);
  await app.register(caseRoutes, { prefix: API, store, vision, schemas, crops });
  await app.register(specimenRoutes, { prefix: API, store, vision, schemas, crops });
  await app.register(teachingRoutes, { prefix: API, dir: options.teachingDir });
  await app.register(webRoutes, { webDir });

  await app.ready();
  return app;
}
