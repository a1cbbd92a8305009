import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('./src/web'),
  // Relative asset URLs so the built UI works wherever the server mounts it.
  base: './',
  build: {
    outDir: here('./dist/web'),
    emptyOutDir: true,
  },
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
