/**
 * The route tests' harness: a fresh data folder for every test and the app under test built on it with the fake
 * model. Call `freshAppPerTest()` once at the top of a test file; `app` and `dataDir` are then the current
 * test's (ES module exports are live bindings, so the importing file sees each new value).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach } from 'vitest';
import { buildApp, type AppOptions } from '../server/app.js';
import { fakeVision, multipart, type UploadFile } from './server.js';

export const API = '/api/v1';

/** A case as the API answers it, loosely typed: what the route tests read of it. */
export interface CaseBody {
  id: string;
  file: string;
  label: string | null;
  confidence: number;
  probabilities: Record<string, number>;
  needsReview: boolean;
  reviewReasons: string[];
  heatmapUrl: string | null;
  imageUrl: string;
  cells: { label: string; box: { x: number }; reviewReasons: string[] }[];
  message?: string;
  createdAt: string;
  width: number;
  height: number;
  model: { name: string; version: string; tta: boolean };
  review: { label: string; reviewer: string; note: string; reviewedAt: string } | null;
  reviews?: { label: string; reviewer: string; note: string; reviewedAt: string }[];
}

/** The current test's data folder (made before each test, removed after it). */
export let dataDir: string;
/** The app the current test last started (closed after each test). */
export let app: FastifyInstance;

/** Registers the hooks that give each test of the calling file its own data folder and close its app. */
export function freshAppPerTest(): void {
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'hv-server-'));
  });
  afterEach(async () => {
    await app?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
}

/** Builds the app on the test's data folder with the fake model and no web UI; `opts` overrides. */
export async function start(opts: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  app = await buildApp({
    auth: 'off',
    vision: fakeVision(),
    dataDir,
    webDir: join(dataDir, 'no-web'),
    ...opts,
  });
  return app;
}

export async function predict(files: UploadFile[], target = app) {
  return target.inject({ method: 'POST', url: `${API}/predict`, ...(await multipart(files)) });
}

/** Upload temp files are removed in onResponse, which may run just after inject() resolves. */
export async function tmpFilesAfterReply(): Promise<string[]> {
  const dir = join(dataDir, 'tmp');
  for (let i = 0; i < 50 && readdirSync(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return readdirSync(dir);
}

export function errorOf(res: { statusCode: number; json: () => unknown }) {
  return res.json() as { error: string; message: string };
}
