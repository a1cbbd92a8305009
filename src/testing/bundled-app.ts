/**
 * What the model-version tests (adaptations and alignments, through the API and on the admin page) start from:
 * the app on the bundled model as the server runs it (the network in a worker thread, swapped when a version
 * is activated) with model versions on, a fresh data folder, and the requests those tests repeat.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { JobJsonShape } from '../api/models.js';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { pipeline } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import type { FineTuneSettings } from '../server/models/adaptation.js';
import { SwappableVision } from '../server/models/swappable.js';
import { builtWeb, openBrowser, type BrowserSession } from './browser.js';
import { teachingCells, type Send } from './reviewed.js';
import { multipart } from './server.js';

export const API = '/api/v1';

export interface BundledApp {
  app: FastifyInstance;
  vision: SwappableVision;
  /** The case store's folder (inside a temporary folder close() removes). */
  dataDir: string;
  /** Where it listens (`listen: true`), else ''. */
  base: string;
  /** A request to the app in-process; when it listens, as if sent to its address (it serves only its own host). */
  send: Send;
  close(): Promise<void>;
}

/**
 * Builds the app on the bundled model with model versions on, accounts and rate limits off; `webDir` serves
 * a built UI, `listen` opens a port for a browser, `fineTune` lets adaptations fine-tune.
 */
export async function startBundledApp(
  o: { webDir?: string; listen?: boolean; fineTune?: FineTuneSettings } = {},
): Promise<BundledApp> {
  const tmp = mkdtempSync(join(tmpdir(), 'hv-bundled-'));
  const dataDir = join(tmp, 'data');
  let vision: SwappableVision | undefined;
  let app: FastifyInstance | undefined;
  const close = async () => {
    await app?.close();
    await vision?.close();
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const load = (model: string) => pipeline({ model, worker: true });
    vision = new SwappableVision(await load(DEFAULT_MODEL_PATH));
    app = await buildApp({
      auth: 'off',
      vision,
      dataDir,
      webDir: o.webDir ?? join(tmp, 'no-web'),
      rateLimits: false,
      models: { path: DEFAULT_MODEL_PATH, load, ...(o.fineTune ? { fineTune: o.fineTune } : {}) },
    });
    const base = o.listen ? await app.listen({ port: 0, host: '127.0.0.1' }) : '';
    const host = base ? { host: new URL(base).host } : {};
    const served = app;
    const send: Send = (req) => served.inject({ ...req, headers: { ...req.headers, ...host } });
    return { app, vision, dataDir, base, send, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The admin page's set-up: the built UI served by the bundled app (listening) and Chromium with one page,
 * started side by side; close() stops both.
 */
export async function startAdminPage(): Promise<BundledApp & BrowserSession> {
  const [app, browser] = await Promise.allSettled([
    builtWeb().then((webDir) => startBundledApp({ webDir, listen: true })),
    openBrowser(),
  ]);
  if (app.status === 'rejected' || browser.status === 'rejected') {
    if (app.status === 'fulfilled') await app.value.close();
    if (browser.status === 'fulfilled') await browser.value.browser.close();
    throw app.status === 'rejected' ? app.reason : (browser as PromiseRejectedResult).reason;
  }
  return {
    ...app.value,
    ...browser.value,
    close: async () => {
      await browser.value.browser.close();
      await app.value.close();
    },
  };
}

/** The sha256 of the model a new case records: one teaching cell predicted through the API. */
export async function newCaseSha(send: Send): Promise<string> {
  const [cell] = teachingCells(1);
  const res = await send({
    method: 'POST',
    url: `${API}/predict`,
    ...(await multipart([{ name: 'one.jpg', bytes: cell.bytes }])),
  });
  expect(res.statusCode).toBe(200);
  return (res.json() as { cases: { model: { sha256: string } }[] }).cases[0].model.sha256;
}

/**
 * Polls a job (`url`, e.g. /api/v1/adaptations/<id>) until it succeeded or failed, or `timeoutMs` passed;
 * `onPoll` sees every state read (it may send requests of its own while the job runs). Returns the last read.
 */
export async function waitForJob<J extends Pick<JobJsonShape, 'state'>>(
  send: Send,
  url: string,
  o: { timeoutMs: number; intervalMs?: number; onPoll?: (job: J) => Promise<void> | void },
): Promise<J> {
  const end = Date.now() + o.timeoutMs;
  for (;;) {
    const job = (await send({ method: 'GET', url })).json() as J;
    await o.onPoll?.(job);
    if (job.state === 'succeeded' || job.state === 'failed' || Date.now() > end) return job;
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 200));
  }
}
