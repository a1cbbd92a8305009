import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { renderServiceWorker } from './sw-build.js';

const template = readFileSync(fileURLToPath(new URL('./sw-template.js', import.meta.url)), 'utf8');

/** Runs the worker script with just enough of a worker global to register its listeners. */
function runWorker(source: string): { cache: string; precache: string[]; events: string[] } {
  const events: string[] = [];
  const self = { addEventListener: (type: string) => events.push(type), location: { origin: 'http://x' } };
  const context = vm.createContext({ self, caches: {}, fetch: () => undefined, Response: {}, URL });
  vm.runInContext(`${source};\nglobalThis.__out = { cache: CACHE, precache: PRECACHE };`, context);
  const out = (context as { __out: { cache: string; precache: string[] } }).__out;
  return { ...out, events };
}

describe('renderServiceWorker', () => {
  it('gives a worker that runs, with the cache name and the precache list filled in', () => {
    const files = ['./', './assets/index-Ab$&1.js', './models/model.int8.onnx'];
    const source = renderServiceWorker(template, 'abc123', files);
    const { cache, precache, events } = runWorker(source);
    expect(cache).toBe('hematovision-abc123');
    // Also when a name holds `$&`, which String.replace would expand.
    expect(precache).toEqual(files);
    expect(events).toEqual(['install', 'activate', 'fetch']);
  });

  it('refuses a template without the statements it fills in', () => {
    expect(() => renderServiceWorker('self.addEventListener("fetch", () => {});', 'v', [])).toThrow(
      /no longer has the statements/,
    );
  });
});
