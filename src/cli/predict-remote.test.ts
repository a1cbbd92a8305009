import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { expectCleanFailure, runCli } from '../testing/cli.js';
import { fakeVision, solidJpeg, solidPng } from '../testing/server.js';

let dir: string;
let app: FastifyInstance;
let base: string;
let files: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hv-cli-remote-'));
  app = await buildApp({
    auth: 'off',
    vision: fakeVision(),
    dataDir: join(dir, 'data'),
    webDir: join(dir, 'no-web'),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  files = [join(dir, 'field.png'), join(dir, 'red.jpg'), join(dir, 'bad.jpg')];
  writeFileSync(files[0], await solidPng(120, 80, [128, 128, 128])); // two cells: eosinophil, lymphocyte
  writeFileSync(files[1], await solidJpeg(32, 32, [220, 30, 30])); // one neutrophil
  writeFileSync(files[2], 'not an image');
  // Over the socket, as a client would (the server answers only to the host it listens on).
  const made = await fetch(`${base}/api/v1/specimens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'CLI-1' }),
  });
  if (made.status !== 201) throw new Error(await made.text());
});

afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('predict --server --specimen', () => {
  it('uploads into the specimen on the server and prints its differential; a bad file fails alone', async () => {
    const r = await runCli([
      'predict',
      '--server',
      base,
      '--specimen',
      'cli-1',
      files[0],
      files[1],
      files[2],
    ]);
    expect(r.code).toBe(1); // one file could not be read
    expect(r.stdout).toContain(`${files[1]}: neutrophil 90.0%`);
    expect(r.stdout).toContain(
      'Specimen CLI-1: 3 of 100 white cells counted (2 images), 1 cell(s) need review.',
    );
    expect(r.stdout).toMatch(/lymphocyte\s+1\s+33\.3%/);
    expect(r.stderr).toContain(`${files[2]}:`);
    expect(r.stderr).toContain('1 of 3 image(s) could not be analysed.');
    // Stored on the server, in the specimen: a second run grows the count.
    const again = await runCli(['predict', '--server', base, '--specimen', 'CLI-1', files[1], '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).specimen.progress.counted).toBe(4);
  });

  it('an unknown specimen or no server: a clear error, nothing uploaded', async () => {
    const total = async () =>
      ((await (await fetch(`${base}/api/v1/cases`)).json()) as { total: number }).total;
    const before = await total();
    expectCleanFailure(
      await runCli(['predict', '--server', base, '--specimen', 'NOPE', files[1]]),
      /No specimen "NOPE"/,
    );
    expect(await total()).toBe(before);
    expectCleanFailure(
      await runCli(['predict', '--specimen', 'CLI-1', files[1]]),
      /--specimen needs --server/,
    );
    expectCleanFailure(
      await runCli(['predict', '--server', 'http://127.0.0.1:9', files[1]]),
      /No HematoVision server answers at http:\/\/127\.0\.0\.1:9/,
    );
    expectCleanFailure(await runCli(['predict', '--server', base, '--csv', files[1]]), /cannot be used with/);
  });
});
