/**
 * Starts the HematoVision server.
 * HOST (default 127.0.0.1), PORT (3000), DATA_DIR (./data), MODEL (model.onnx or model.int8.onnx, or their folder; default the bundled model),
 * TTA=1 (test-time augmentation: each cell's 8 flips and turns averaged; more accurate, 8× the network time),
 * DATABASE_URL=postgres://… (cases, reviews and images in PostgreSQL; DATA_DIR then holds only upload temp files);
 * the hardening settings of env.ts (ALLOWED_HOSTS, rate limits, request size and timeout, MIN_FREE_MB,
 * EXPORT_RETENTION_HOURS),
 * job timing (JOBS_SUPERVISE_SECONDS, JOBS_POLL_SECONDS, ADAPTATION_LIMIT_SECONDS, MODEL_SYNC_SECONDS),
 * adaptations' fine-tuning (BACKBONE_TFLITE: the MobileNetV2 TFLite weights, default ../shared/weights beside
 * the repository when present; ADAPTATION_FINE_TUNE_MIN_CELLS: fewest reviewed cells of every class, default 200).
 * AUTH=off (no accounts: only on a loopback HOST; accounts are on by default and the first start prints a
 * one-time link to create the admin).
 */
import { resolve } from 'node:path';
import { HematoError } from '../errors.js';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { pipeline } from '../pipeline.js';
import { buildApp } from './app.js';
import { AUTH_OFF_WARNING, authFromEnv } from './auth/env.js';
import { hardeningFromEnv } from './env.js';
import { fineTuneFromEnv } from './models/fine-tune-env.js';
import { SwappableVision } from './models/swappable.js';
import { installShutdown } from './shutdown.js';
import { redactUrl } from './store/index.js';

async function main(): Promise<void> {
  // Database, images and upload temp files: owner read-write, group read, others nothing.
  process.umask(0o027);
  const host = process.env.HOST || '127.0.0.1';
  const port = Number(process.env.PORT || 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HematoError(
      `PORT must be an integer from 0 to 65535, not "${process.env.PORT}".`,
      'bad_config',
    );
  }
  const dataDir = resolve(process.env.DATA_DIR || 'data');
  const databaseUrl = process.env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new HematoError(
      'DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:5432/database); ' +
        'leave it unset for the embedded SQLite database in DATA_DIR.',
      'bad_config',
    );
  }

  const ttaSetting = process.env.TTA ?? '';
  if (!['', '0', '1'].includes(ttaSetting))
    throw new HematoError(`TTA must be 1 (test-time augmentation) or 0, not "${ttaSetting}".`, 'bad_config');
  const tta = ttaSetting === '1';
  const hardening = hardeningFromEnv(process.env);
  const auth = authFromEnv(process.env, host);
  // The network runs in its own thread so the event loop keeps serving other clients meanwhile.
  const modelPath = process.env.MODEL || DEFAULT_MODEL_PATH;
  const load = (model: string) => pipeline({ model, worker: true });
  // An activated model version replaces the one inside without a restart (admin API).
  const vision = new SwappableVision(await load(modelPath));
  if (tta && !vision.hasTta) {
    await vision.close();
    throw new HematoError(
      `TTA=1, but model ${vision.card.name} ${vision.card.version} is not calibrated for test-time augmentation.`,
      'bad_config',
    );
  }
  let app;
  try {
    app = await buildApp({
      vision,
      dataDir,
      databaseUrl,
      logger: true,
      tta,
      auth,
      models: { path: modelPath, load, fineTune: fineTuneFromEnv(process.env) },
      jobs: jobTimingFromEnv(process.env),
      ...hardening,
    });
  } catch (err) {
    await vision.close();
    throw err;
  }

  installShutdown(app, vision);

  await app.listen({ host, port });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const where = databaseUrl ? `data in PostgreSQL at ${redactUrl(databaseUrl)}` : `data in ${dataDir}`;
  console.log(
    `HematoVision ${vision.card.name} ${vision.card.version} at http://${shownHost}:${actualPort}/ (${where}` +
      `${tta ? '; test-time augmentation on' : ''})`,
  );
  if (auth === 'off') console.warn(AUTH_OFF_WARNING);
  const setupToken = app.auth.setupToken;
  if (setupToken) {
    // On the console only (not in the request log): whoever can read it can make the first admin.
    const linkHost = host === '0.0.0.0' || host === '::' ? 'localhost' : shownHost;
    console.log(
      `\nNo account exists yet. Create the admin account here (a one-time link; or run ` +
        '`hematovision users add <name> --role admin`):\n' +
        `  http://${linkHost}:${actualPort}/#/setup?token=${setupToken}\n`,
    );
  }
}

/**
 * JOBS_SUPERVISE_SECONDS, JOBS_POLL_SECONDS, ADAPTATION_LIMIT_SECONDS, EXPORT_LIMIT_SECONDS,
 * MODEL_SYNC_SECONDS (tests shorten them).
 */
function jobTimingFromEnv(env: NodeJS.ProcessEnv) {
  const seconds = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!(n > 0))
      throw new HematoError(`${name} must be a number of seconds above 0, not "${v}".`, 'bad_config');
    return n;
  };
  return {
    superviseSeconds: seconds('JOBS_SUPERVISE_SECONDS'),
    pollSeconds: seconds('JOBS_POLL_SECONDS'),
    adaptationLimitSeconds: seconds('ADAPTATION_LIMIT_SECONDS'),
    exportLimitSeconds: seconds('EXPORT_LIMIT_SECONDS'),
    modelSyncSeconds: seconds('MODEL_SYNC_SECONDS'),
  };
}

main().catch((err: unknown) => {
  console.error(err instanceof HematoError ? `Error: ${err.message}` : err);
  process.exit(1);
});
