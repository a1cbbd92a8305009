/**
 * What every browser (e2e) test file shares: the built web app, the Chromium launch and the capture of every
 * error a page logs.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Page,
} from 'playwright-core';
import { REPO_ROOT } from './shared.js';

export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
/** Full-page screenshots of the e2e tests, for a human to look at. */
export const SHOT_DIR = join(REPO_ROOT, 'test-results/screenshots');

const CACHE = join(REPO_ROOT, '.cache');
const BUILD_PREFIX = 'web-';

/** Every file below `dir` (sorted), test files left out: they are not bundled. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** A hash of everything the bundle is built from: the sources, the build config and the locked packages. */
function buildKey(): string {
  const h = createHash('sha256');
  const inputs = [
    ...sourceFiles(join(REPO_ROOT, 'src')),
    join(REPO_ROOT, 'vite.config.ts'),
    join(REPO_ROOT, 'package-lock.json'),
  ];
  for (const f of inputs) h.update(relative(REPO_ROOT, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex').slice(0, 16);
}

/**
 * The web app as `npm run build:web` builds it, built once per state of the sources into .cache/ and then
 * shared by every e2e file (a build takes tens of seconds; three files built it each before). Returns the
 * folder to serve.
 */
export async function builtWeb(): Promise<string> {
  const outDir = join(CACHE, `${BUILD_PREFIX}${buildKey()}`);
  if (existsSync(join(outDir, 'index.html'))) return outDir;
  // Built beside, then renamed: a build cut short never looks complete.
  const partDir = `${outDir}.part-${process.pid}`;
  const { build } = await import('vite');
  await build({
    configFile: join(REPO_ROOT, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: partDir, emptyOutDir: true },
  });
  try {
    renameSync(partDir, outDir);
  } catch (err) {
    // Another run built the same sources meanwhile: theirs is as good.
    rmSync(partDir, { recursive: true, force: true });
    if (!existsSync(join(outDir, 'index.html'))) throw err;
  }
  removeOldBuilds(outDir);
  return outDir;
}

/** Builds of earlier sources, once an hour has passed (a run in progress may still serve one). */
function removeOldBuilds(keep: string): void {
  const hourAgo = Date.now() - 60 * 60 * 1000;
  for (const name of readdirSync(CACHE)) {
    const dir = join(CACHE, name);
    if (!name.startsWith(BUILD_PREFIX) || dir === keep) continue;
    if (statSync(dir).mtimeMs < hourAgo) rmSync(dir, { recursive: true, force: true });
  }
}

/** Headless Chromium with nothing of its own on the network (no updates, sync or background fetches). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-quic',
      '--no-first-run',
      '--disable-sync',
    ],
  });
}

/** Collects the page's console errors and uncaught exceptions (CSP violations included) into `into`. */
export function captureErrors(page: Page, into: string[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error') into.push(m.text());
  });
  page.on('pageerror', (e) => into.push(e.message));
}

export interface BrowserSession {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Every error the page logged; a test ends by expecting it empty. */
  errors: string[];
}

/**
 * Chromium with one desktop-sized page (1280×900) whose errors are captured, and the screenshot folder made.
 * `timeout` is the page's default for every wait.
 */
export async function openBrowser(
  options: { timeout?: number; context?: BrowserContextOptions } = {},
): Promise<BrowserSession> {
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options.context });
  const page = await context.newPage();
  page.setDefaultTimeout(options.timeout ?? 60_000);
  const errors: string[] = [];
  captureErrors(page, errors);
  mkdirSync(SHOT_DIR, { recursive: true });
  return { browser, context, page, errors };
}
