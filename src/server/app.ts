/** Assembles the HTTP server from its parts: error mapping, security headers, uploads, docs, routes. */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { HematoError } from '../errors.js';
import type { HematoVision } from '../pipeline.js';
import { API_BASE as API } from '../api/index.js';
import { CellCrops } from './cell-crops.js';
import { ReportRenderer } from '../report/render-thread.js';
import { CsvFormatter } from './csv-thread.js';
import { clientErrorHandler, DEFAULT_MAX_CONNECTIONS, limitConnections } from './connections.js';
import { lockDataDir, type DataLock } from './data-lock.js';
import { installGuard } from './auth/guard.js';
import { installErrorHandlers } from './http-errors.js';
import { httpServerFactory, installHygiene } from './hygiene.js';
import { DEFAULT_RATE_LIMITS, installRateLimits, type RateLimits } from './rate-limits.js';
import { openapiOptions } from './openapi.js';
import { accountRoutes } from './routes/accounts.js';
import { passwordRoutes } from './routes/password.js';
import { caseRoutes } from './routes/cases.js';
import { predictRoutes } from './routes/predict.js';
import { readyRoutes } from './routes/ready.js';
import { serviceRoutes } from './routes/service.js';
import { specimenRoutes } from './routes/specimens.js';
import { teachingRoutes } from './routes/teaching.js';
import { webRoutes } from './routes/web.js';
import { deviceModelRoutes } from './routes/device-model.js';
import { routeSchemas, sharedSchemas } from './schemas.js';
import { removeStaleTemps } from './store/blobs.js';
import { openStore, type CaseStore } from './store/index.js';
import { createJobQueue, type JobQueue } from './jobs/index.js';
import { ModelRegistry, type ModelSource } from './models/registry.js';
import { SwappableVision } from './models/swappable.js';
import { modelRoutes } from './routes/models.js';
import { adaptationRoutes } from './routes/adaptations.js';
import { alignmentRoutes } from './routes/alignments.js';
import { exportRoutes } from './routes/exports.js';
import { DEFAULT_EXPORT_RETENTION_HOURS, exportSweeper } from './export-retention.js';
import { registerJobKinds } from './job-kinds.js';

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
  /** The model browsers download for "Analyse on this device". Default: models/model.int8.onnx. */
  deviceModel?: string;
  /** Fastify's logger: true, or pino options (a stream to capture the log in tests). */
  logger?: FastifyServerOptions['logger'];
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
  /** Host header values served (`name` or `name:port`); default localhost and the listen address. */
  allowedHosts?: string[];
  /** Rate limits per account or client address, and of sign-in attempts (default DEFAULT_RATE_LIMITS); false: none. */
  rateLimits?: Partial<RateLimits> | false;
  /** Bytes of one whole upload request (default 100 MB), refused from its Content-Length before reading. */
  maxRequestBytes?: number;
  /** Milliseconds for a whole request (headers and body) to arrive (default 120 s); then 408 and closed. */
  requestTimeoutMs?: number;
  /** Milliseconds a connection may sit idle (default 300 s). */
  connectionTimeoutMs?: number;
  /** Milliseconds an idle keep-alive connection stays open (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** Below this many free bytes in dataDir GET /ready says not ready (default 512 MB). */
  minFreeBytes?: number;
  /** Trust X-Forwarded-* from a reverse proxy (client IP for rate limits, https for HSTS). Default false. */
  trustProxy?: boolean;
  /**
   * The model file `vision` was loaded from and how to load another: turns on model versions and
   * adaptations (admin routes). Without it the server runs `vision` alone.
   */
  models?: ModelSource;
  /** Timing of jobs and of following another replica's activation (tests shorten them). */
  jobs?: {
    /** PostgreSQL: seconds between pg-boss's looks for jobs of dead replicas (default 30). */
    superviseSeconds?: number;
    /** Seconds between an idle runner's looks for a job (default 2; SQLite 1). */
    pollSeconds?: number;
    /** Longest adaptation run (default 1800 s); on PostgreSQL also how long a dead replica holds one. */
    adaptationLimitSeconds?: number;
    /** Longest export run (CSV, PDF report; default 300 s); on PostgreSQL also how long a dead replica holds one. */
    exportLimitSeconds?: number;
    /** Seconds between looks for a model another replica activated (default 5). */
    modelSyncSeconds?: number;
    /** Seconds between sweeps of exports past their retention (default 900; one also at start). */
    exportSweepSeconds?: number;
  };
  /**
   * Accounts (default 'on'): every case, specimen, model and audit route needs a signed-in account or an
   * API token. 'off': everyone acts as one local admin (main.ts allows it only on a loopback address).
   */
  auth?: 'on' | 'off';
  /** Open connections at most (default 512); one more is closed at once and logged. */
  maxConnections?: number;
  /**
   * Hours a finished export job and its file (patient data) are kept (default 24); then a sweep removes them
   * and GET /exports/{id} answers 404.
   */
  exportRetentionHours?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    caseStore: CaseStore;
    jobQueue: JobQueue;
    /** Model versions, when AppOptions.models is given. */
    modelRegistry: ModelRegistry | undefined;
  }
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** Builds the HTTP server: REST API v1 under /api/v1, the UI from webDir at /. The store closes with the app. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o750 });
  // The lock protects SQLite's in-memory blob guard. On PostgreSQL the folder holds only upload temp files and
  // the replicas share the database (its foreign keys guard the bytes): nothing to lock, nothing else written.
  const lock = options.databaseUrl ? undefined : lockDataDir(resolve(options.dataDir));
  let store: CaseStore | undefined;
  try {
    store = await openStore({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
    // With the lock held no other process writes here: every temp file is a dead server's (kill -9 with
    // uploads arriving), not only those older than an hour.
    if (lock) removeStaleTemps(store.tmpDir, 0);
    return await assemble(options, store, lock);
  } catch (err) {
    await store?.close();
    lock?.release();
    throw err;
  }
}

async function assemble(
  options: AppOptions,
  store: CaseStore,
  lock: DataLock | undefined,
): Promise<FastifyInstance> {
  // Routes hold this one: an activated model version replaces the one inside without a restart.
  const vision =
    options.vision instanceof SwappableVision ? options.vision : new SwappableVision(options.vision);
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
  // Timeouts: a stalled or slow body, or a Content-Length larger than the body, is cut off (408).
  const app = Fastify({
    logger: options.logger ?? false,
    // One line per request from hygiene.ts instead of Fastify's two (and its error logs for 4xx).
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: options.trustProxy ?? false,
    serverFactory: httpServerFactory({
      requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
      connectionTimeoutMs: options.connectionTimeoutMs ?? 300_000,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5_000,
    }),
    ajv: { customOptions: { removeAdditional: false } },
    clientErrorHandler,
  });
  limitConnections(app, options.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
  app.decorate('caseStore', store);
  const jobs = createJobQueue(store, { databaseUrl: options.databaseUrl, ...options.jobs });
  const registry = options.models
    ? new ModelRegistry(store, options.dataDir, vision, options.models)
    : undefined;
  app.decorate('jobQueue', jobs);
  app.decorate('modelRegistry', registry);
  let syncTimer: NodeJS.Timeout | undefined;
  const exportRetentionHours = options.exportRetentionHours ?? DEFAULT_EXPORT_RETENTION_HOURS;
  // Finished exports (patient data) past their retention go, with their files (started with the jobs).
  const exportSweeps = exportSweeper(store, app.log, {
    retentionHours: exportRetentionHours,
    sweepSeconds: options.jobs?.exportSweepSeconds,
  });
  // PDF reports off the event loop (one thread, started by the first report).
  const reports = new ReportRenderer();
  // CSV exports formatted off the event loop, at low priority (one thread, started by the first export).
  const csv = new CsvFormatter();
  app.addHook('onClose', async () => {
    if (syncTimer) clearInterval(syncTimer);
    await exportSweeps.close();
    await reports.close();
    await jobs.close();
    // After the jobs: an export job still running formats its last rows there.
    await csv.close();
    await registry?.close();
    if (vision !== options.vision) await vision.closeSwapped();
    await store.close();
    lock?.release();
  });
  installErrorHandlers(app, { maxFiles, maxFileBytes });
  await installHygiene(app, {
    allowedHosts: options.allowedHosts,
    maxRequestBytes: options.maxRequestBytes ?? 100 * 1024 * 1024,
    requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
  });
  const limit =
    options.rateLimits === false
      ? undefined
      : await installRateLimits(app, { ...DEFAULT_RATE_LIMITS, ...options.rateLimits }, store.rateCounters);
  // Before any route: the guard gives each route its access level as it is added.
  await installGuard(app, { enabled: options.auth !== 'off', accounts: store.accounts, limit });

  await app.register(helmet, {
    // Sent only to clients that came over TLS (hygiene.ts).
    strictTransportSecurity: false,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", 'blob:', 'data:'],
        // The on-device runtime (onnxruntime-web) compiles its WebAssembly: allowed, eval stays refused.
        scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
        styleSrc: ["'self'"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // With helmet's same-origin opener policy this makes the page cross-origin isolated, so the on-device
    // runtime may use threads (SharedArrayBuffer); everything the UI loads is its own, so nothing is blocked.
    crossOriginEmbedderPolicy: true,
  });
  await app.register(multipart, {
    // An oversize file is kept truncated and refused alone (predict), so the rest of its batch goes on.
    throwFileSizeLimit: false,
    limits: { fileSize: maxFileBytes, files: maxFiles, fields: 20, parts: maxFiles + 20 },
  });
  for (const schema of sharedSchemas) app.addSchema(schema);
  await app.register(swagger, openapiOptions(VERSION));
  // Browsable API docs from the same OpenAPI document (scripts and styles are its own files: the CSP holds).
  await app.register(swaggerUi, { routePrefix: `${API}/docs`, uiConfig: { docExpansion: 'list' } });

  const schemas = routeSchemas({ classes: vision.card.classes, maxFiles, maxFileBytes });
  await app.register(serviceRoutes, { prefix: API, vision, schemas, tta });
  await app.register(accountRoutes, { prefix: API, store });
  await app.register(passwordRoutes, { prefix: API, store });
  await app.register(readyRoutes, {
    prefix: API,
    store,
    vision,
    schemas,
    dataDir: options.dataDir,
    minFreeBytes: options.minFreeBytes ?? 512 * 1024 * 1024,
  });
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
  await app.register(caseRoutes, { prefix: API, store, vision, schemas, crops, csv });
  await app.register(specimenRoutes, { prefix: API, store, vision, schemas, crops, reports, csv });
  await app.register(exportRoutes, { prefix: API, store, jobs, retentionHours: exportRetentionHours });
  await app.register(teachingRoutes, { prefix: API, dir: options.teachingDir });
  await app.register(deviceModelRoutes, {
    modelPath: resolve(options.deviceModel ?? join(REPO_ROOT, 'models/model.int8.onnx')),
  });
  if (registry) {
    await registry.init();
    await app.register(modelRoutes, { prefix: API, registry });
    await app.register(adaptationRoutes, { prefix: API, store, jobs, registry });
    await app.register(alignmentRoutes, { prefix: API, store, jobs, registry });
  }
  registerJobKinds(jobs, {
    store,
    vision,
    crops,
    render: (report) => reports.render(report),
    csv,
    registry,
    fineTune: options.models?.fineTune,
    limits: {
      adaptationSeconds: options.jobs?.adaptationLimitSeconds,
      exportSeconds: options.jobs?.exportLimitSeconds,
    },
  });
  await app.register(webRoutes, { webDir });

  await app.ready();
  await jobs.start();
  exportSweeps.start();
  if (registry && options.databaseUrl) {
    // Another replica's activation reaches this one within this interval.
    syncTimer = setInterval(
      () => void registry.sync().catch((err: unknown) => app.log.error(err, 'following the active model')),
      (options.jobs?.modelSyncSeconds ?? 5) * 1000,
    );
    syncTimer.unref();
  }
  return app;
}
