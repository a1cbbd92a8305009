// What Redocly's recommended lint asks of the document (no errors, no warnings with @redocly/cli 2.x on it):
// checked here without the tool, so it holds for every route added later.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { OPEN_OPERATIONS } from '../testing/accounts.js';
import { fakeVision } from '../testing/server.js';

interface Operation {
  operationId?: string;
  security?: unknown[];
  responses: Record<string, unknown>;
}
interface Doc {
  info: { license?: { name: string; identifier?: string; url?: string } };
  servers?: { url: string }[];
  security?: Record<string, string[]>[];
  components: { securitySchemes?: Record<string, { type: string; in?: string; scheme?: string }> };
  paths: Record<string, Record<string, Operation>>;
}

let dataDir: string;
let app: FastifyInstance;
let doc: Doc;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-openapi-'));
  app = await buildApp({ auth: 'off', vision: fakeVision(), dataDir, webDir: join(dataDir, 'no-web') });
  doc = (await app.inject({ url: '/api/v1/openapi.json' })).json();
});
afterAll(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ name: `${method} ${path}`, op })),
  );

describe('the OpenAPI document says how the API is secured', () => {
  it('gives every operation a unique operationId and a 4xx reply', () => {
    const ids = operations().map(({ name, op }) => {
      expect(op.operationId, name).toMatch(/^[a-z][A-Za-z0-9]+$/);
      expect(
        Object.keys(op.responses).some((s) => /^4/i.test(s)),
        `${name} 4xx`,
      ).toBe(true);
      return op.operationId;
    });
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(12);
  });

  it('has servers and a licence', () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    expect(doc.servers![0].url).not.toMatch(/example\.com/);
    expect(doc.info.license).toMatchObject({ name: 'Apache-2.0', identifier: 'Apache-2.0' });
  });

  it('declares the session cookie and the bearer token, required by every operation but the public ones', () => {
    expect(doc.components.securitySchemes).toMatchObject({
      session: { type: 'apiKey', in: 'cookie', name: 'hv_session' },
      bearer: { type: 'http', scheme: 'bearer' },
    });
    const open: string[] = [];
    for (const { name, op } of operations()) {
      expect(op.security, name).toBeDefined();
      if (op.security!.length === 0) open.push(op.operationId!);
      else expect(op.security, name).toEqual([{ session: [] }, { bearer: [] }]);
    }
    expect(open.sort()).toEqual(OPEN_OPERATIONS);
  });
});
