import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker on the module `name` beside `from` (pass `import.meta.url`), with the same extension as
 * `from`. Run from TypeScript sources (tsx, vitest), the worker has no TypeScript loader of its own, so a
 * one-line bootstrap registers tsx's before importing the module.
 */
export function startWorker(from: string, name: string, workerData: unknown): Worker {
  const entry = new URL(`./${name}${extname(fileURLToPath(from))}`, from);
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData });
}
