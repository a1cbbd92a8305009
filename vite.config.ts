import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { renderServiceWorker } from './src/web/local/sw-build.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Writes sw.js (src/web/local/sw-template.js) into the build with every emitted file (hashed assets, the
 * wasm runtime) and the device model in its precache list, so "Analyse on this device" works offline after
 * the first visit.
 */
function offlinePlugin(): Plugin {
  return {
    name: 'hematovision-offline',
    apply: 'build',
    generateBundle(_options, bundle) {
      const files = ['./', ...Object.keys(bundle).map((f) => `./${f}`)];
      files.push('./models/model.int8.onnx', './models/model.int8.json');
      const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12);
      const template = readFileSync(here('./src/web/local/sw-template.js'), 'utf8');
      const source = renderServiceWorker(template, version, files);
      this.emitFile({ type: 'asset', fileName: 'sw.js', source });
    },
  };
}

export default defineConfig({
  root: here('./src/web'),
  // Relative asset URLs so the built UI works wherever the server mounts it.
  base: './',
  build: {
    outDir: here('./dist/web'),
    emptyOutDir: true,
  },
  plugins: [offlinePlugin()],
  server: {
    // The server refuses a foreign Host and a cross-origin write: the dev proxy presents itself as the server's own origin.
    proxy: {
      '/api': {
        target: 'http://127.0.0.1:3000',
        changeOrigin: true,
        headers: { origin: 'http://127.0.0.1:3000' },
      },
    },
  },
});
