// `hematovision users …` and `tokens …` on a data folder, and what the server then accepts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { expectCleanFailure, runCli } from '../testing/cli.js';
import { fakeVision, solidJpeg } from '../testing/server.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hv-cli-accounts-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('hematovision users and tokens', () => {
  it('adds, lists and disables accounts; creates and revokes tokens the server accepts', async () => {
    const data = ['--data-dir', dir];
    const add = await runCli(['users', 'add', 'north', '--role', 'clinic', '--clinic', 'North', ...data]);
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('Created clinic account "north" of clinic "North".');
    const password = /Password \(shown once[^)]*\): (\S+)/.exec(add.stdout)?.[1];
    expect(password?.length).toBeGreaterThanOrEqual(20);
    expectCleanFailure(
      await runCli(['users', 'add', 'NORTH', '--role', 'reviewer', ...data]),
      /exists already/,
    );
    expectCleanFailure(await runCli(['users', 'add', 'x', '--role', 'clinic', ...data]), /needs its clinic/);
    expectCleanFailure(await runCli(['users', 'add', 'y', '--role', 'boss', ...data]), /Allowed choices/);
    expect((await runCli(['users', 'add', 'rev', '--role', 'reviewer', ...data])).code).toBe(0);
    expect((await runCli(['users', 'list', ...data])).stdout).toBe(
      'north\tclinic\tNorth\tenabled\tnorth\nrev\treviewer\t-\tenabled\trev\n',
    );

    const created = await runCli(['tokens', 'create', 'north', '--name', 'scanner', ...data]);
    expect(created.code).toBe(0);
    const token = created.stdout.trim().split('\n').at(-1)!;
    expect(token).toMatch(/^hv_[A-Za-z0-9_-]{43}$/);
    const id = /^Token (\S+)/.exec(created.stdout)![1];

    const app = await buildApp({ vision: fakeVision(), dataDir: dir, webDir: join(dir, 'no-web') });
    try {
      const get = (headers: Record<string, string>) => app.inject({ url: '/api/v1/cases', headers });
      expect((await get({ authorization: `Bearer ${token}` })).statusCode).toBe(200);
      const signIn = await app.inject({
        method: 'POST',
        url: '/api/v1/session',
        payload: { name: 'north', password },
      });
      expect(signIn.statusCode).toBe(200);

      expect((await runCli(['tokens', 'revoke', id, ...data])).code).toBe(0);
      expectCleanFailure(await runCli(['tokens', 'revoke', id, ...data]), /No token/);
      expect((await get({ authorization: `Bearer ${token}` })).statusCode).toBe(401);
      expect((await runCli(['tokens', 'list', ...data])).stdout).toMatch(/\tnorth\tscanner\t.*\t20\d\d-/);

      expect((await runCli(['users', 'disable', 'north', ...data])).stdout).toBe('Disabled "north".\n');
      const cookie = `hv_session=${signIn.cookies[0].value}`;
      expect((await get({ cookie })).statusCode).toBe(401);
      expect((await runCli(['users', 'list', ...data])).stdout).toContain('north\tclinic\tNorth\tdisabled');
      expectCleanFailure(await runCli(['users', 'disable', 'nobody', ...data]), /No account "nobody"/);

      const audit = await app.caseStore.accounts.auditEntries({ limit: 20, offset: 0 });
      expect(audit.entries.map((e) => `${e.actor} ${e.action} ${e.targetId}`).reverse()).toEqual([
        'cli user.create north',
        'cli user.create rev',
        `cli token.create ${id}`,
        'north sign-in north',
        `cli token.revoke ${id}`,
        'cli user.disable north',
      ]);
    } finally {
      await app.close();
    }
  });

  it('resets a password (users password): the new one signs in, the old one and its sessions do not', async () => {
    const data = ['--data-dir', dir];
    const add = await runCli(['users', 'add', 'rev', '--role', 'reviewer', ...data]);
    const old = /Password \(shown once[^)]*\): (\S+)/.exec(add.stdout)![1];
    const app = await buildApp({ vision: fakeVision(), dataDir: dir, webDir: join(dir, 'no-web') });
    try {
      const signIn = (password: string) =>
        app.inject({ method: 'POST', url: '/api/v1/session', payload: { name: 'rev', password } });
      const before = await signIn(old);
      expect(before.statusCode).toBe(200);
      const cookie = `hv_session=${before.cookies[0].value}`;

      const reset = await runCli(['users', 'password', 'REV', ...data]);
      expect(reset.code, reset.stderr).toBe(0);
      expect(reset.stdout).toContain('Set the password of "rev"; its sessions ended');
      const fresh = /Password \(shown once\): (\S+)/.exec(reset.stdout)![1];
      expect(fresh).not.toBe(old);
      expect((await app.inject({ url: '/api/v1/cases', headers: { cookie } })).statusCode).toBe(401);
      expect((await signIn(old)).statusCode).toBe(401);
      expect((await signIn(fresh)).statusCode).toBe(200);
      expectCleanFailure(await runCli(['users', 'password', 'nobody', ...data]), /No account "nobody"/);
      const audit = await app.caseStore.accounts.auditEntries({
        action: 'password.reset',
        limit: 5,
        offset: 0,
      });
      expect(audit.entries).toMatchObject([{ actor: 'cli', targetId: 'rev', ip: null }]);
    } finally {
      await app.close();
    }
  });

  it('predicts through a server with accounts on, with the API token in HEMATOVISION_TOKEN', async () => {
    expect(
      (await runCli(['users', 'add', 'up', '--role', 'clinic', '--clinic', 'East', '--data-dir', dir])).code,
    ).toBe(0);
    const token = (await runCli(['tokens', 'create', 'up', '--data-dir', dir])).stdout
      .trim()
      .split('\n')
      .at(-1)!;
    const app = await buildApp({ vision: fakeVision(), dataDir: dir, webDir: join(dir, 'no-web') });
    const image = join(dir, 'red.jpg');
    writeFileSync(image, await solidJpeg(32, 32, [220, 30, 30]));
    const saved = process.env.HEMATOVISION_TOKEN;
    try {
      const base = await app.listen({ port: 0, host: '127.0.0.1' });
      delete process.env.HEMATOVISION_TOKEN;
      expectCleanFailure(await runCli(['predict', '--server', base, image]), /Set HEMATOVISION_TOKEN/);
      process.env.HEMATOVISION_TOKEN = token;
      const ok = await runCli(['predict', '--server', base, image]);
      expect(ok.code, ok.stderr).toBe(0);
      const cases = await app.caseStore.list({ limit: 10, offset: 0 });
      expect(cases.cases.map((c) => c.clinic)).toEqual(['East']);
    } finally {
      if (saved === undefined) delete process.env.HEMATOVISION_TOKEN;
      else process.env.HEMATOVISION_TOKEN = saved;
      await app.close();
    }
  });
});
