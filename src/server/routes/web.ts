/** The built UI at / (vite build output), or a page that says how to build it. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { API_BASE as API } from '../../api/index.js';

const NO_UI_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HematoVision</title></head>
<body><h1>HematoVision</h1>
<p>The web interface has not been built. Run <code>npm run build:web</code> and reload this page.</p>
<p>The REST API is available at <a href="${API}/openapi.json">${API}/openapi.json</a>.</p>
</body></html>
`;

export const webRoutes: FastifyPluginAsync<{ webDir: string }> = async (app, { webDir }) => {
  if (existsSync(join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, { root: webDir, prefix: '/', index: 'index.html' });
  } else {
    app.get('/', { schema: { hide: true, response: { 200: { type: 'string' } } } }, async (_request, reply) =>
      reply.type('text/html; charset=utf-8').send(NO_UI_PAGE),
    );
  }
};
