/**
 * `hematovision users add|list|password|disable|enable` and `tokens create|list|revoke`: accounts and API tokens in
 * the server's database (DATA_DIR's SQLite, or DATABASE_URL's PostgreSQL), also while the server runs.
 * Thin: the checks are the server's (src/server/auth/users.ts).
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { ROLES, type Role } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import { createAccount, createApiToken, resetPassword } from '../../server/auth/users.js';
import { openStore, type CaseStore } from '../../server/store/index.js';
import type { Io } from '../io.js';

interface StoreCliOptions {
  dataDir?: string;
  databaseUrl?: string;
}

/** The options every subcommand has: where the database is (default: as the server finds it). */
function storeOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'the data folder (default: $DATA_DIR, else ./data)')
    .option('--database-url <url>', 'a PostgreSQL database instead (default: $DATABASE_URL)');
}

async function withStore<T>(opts: StoreCliOptions, work: (store: CaseStore) => Promise<T>): Promise<T> {
  const store = await openStore({
    dataDir: resolve(opts.dataDir ?? process.env.DATA_DIR ?? 'data'),
    databaseUrl: opts.databaseUrl ?? (process.env.DATABASE_URL || undefined),
  });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** The first line of standard input (a password piped in: `--password-stdin`). */
async function stdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
}

export function registerAccounts(program: Command, io: Io): void {
  const users = program
    .command('users')
    .description('Accounts of the server: clinic (uploads), reviewer (reviews, signs), admin (manages)');

  storeOptions(users.command('add <name>'))
    .description('Create an account; without --password-stdin a random password is made and shown once')
    .addOption(new Option('--role <role>', 'what the account may do').choices(ROLES).makeOptionMandatory())
    .option('--clinic <clinic>', 'the clinic of a clinic account (required for one)')
    .option('--display-name <text>', 'the name on reviews and signed reports (default: the login name)')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .action(
      async (
        name: string,
        opts: StoreCliOptions & {
          role: Role;
          clinic?: string;
          displayName?: string;
          passwordStdin?: boolean;
        },
      ) => {
        const generated = opts.passwordStdin ? undefined : randomBytes(15).toString('base64url');
        const password = generated ?? (await stdinLine());
        const account = await withStore(opts, async (store) => {
          const created = await createAccount(store.accounts, {
            name,
            displayName: opts.displayName,
            role: opts.role,
            clinic: opts.clinic,
            password,
          });
          await store.accounts.audit({
            actor: 'cli',
            action: 'user.create',
            targetType: 'user',
            targetId: created.name,
            detail: created.role,
          });
          return created;
        });
        io.out(
          `Created ${account.role} account "${account.name}"` +
            `${account.clinic ? ` of clinic "${account.clinic}"` : ''}.`,
        );
        if (generated) io.out(`Password (shown once; change with \`users password\`): ${generated}`);
      },
    );

  storeOptions(users.command('password <name>'))
    .description(
      "Set an account's password (an admin's reset); its sessions end. Without --password-stdin a random " +
        'one is made and shown once',
    )
    .option('--password-stdin', 'read the password from the first line of standard input')
    .action(async (name: string, opts: StoreCliOptions & { passwordStdin?: boolean }) => {
      const generated = opts.passwordStdin ? undefined : randomBytes(15).toString('base64url');
      const password = generated ?? (await stdinLine());
      const account = await withStore(opts, async (store) => {
        const user = await resetPassword(store.accounts, name, password);
        await store.accounts.audit({
          actor: 'cli',
          action: 'password.reset',
          targetType: 'user',
          targetId: user.name,
          detail: 'all sessions ended',
        });
        return user;
      });
      io.out(`Set the password of "${account.name}"; its sessions ended (its API tokens still work).`);
      if (generated) io.out(`Password (shown once): ${generated}`);
    });

  storeOptions(users.command('list'))
    .description('List the accounts')
    .action(async (opts: StoreCliOptions) => {
      const list = await withStore(opts, (store) => store.accounts.listUsers());
      if (list.length === 0) io.out('No accounts yet.');
      for (const a of list)
        io.out(
          [a.name, a.role, a.clinic ?? '-', a.disabled ? 'disabled' : 'enabled', a.displayName].join('\t'),
        );
    });

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    storeOptions(users.command(`${verb} <name>`))
      .description(
        disabled
          ? 'Disable an account: it cannot sign in, its sessions and tokens stop working'
          : 'Enable it again',
      )
      .action(async (name: string, opts: StoreCliOptions) => {
        await withStore(opts, async (store) => {
          if (!(await store.accounts.setDisabled(name, disabled)))
            throw new HematoError(`No account "${name}".`, 'not_found');
          await store.accounts.audit({
            actor: 'cli',
            action: disabled ? 'user.disable' : 'user.enable',
            targetType: 'user',
            targetId: name,
          });
        });
        io.out(`${disabled ? 'Disabled' : 'Enabled'} "${name}".`);
      });
  }

  const tokens = program
    .command('tokens')
    .description('API tokens for scripts (Authorization: Bearer <token>), each acting as its account');

  storeOptions(tokens.command('create <user>'))
    .description('Create a token for the account; the token is shown once, only its hash is stored')
    .option('--name <label>', 'what the token is for', 'script')
    .action(async (user: string, opts: StoreCliOptions & { name: string }) => {
      const { token, record } = await withStore(opts, async (store) => {
        const made = await createApiToken(store.accounts, user, opts.name);
        await store.accounts.audit({
          actor: 'cli',
          action: 'token.create',
          targetType: 'token',
          targetId: made.record.id,
          detail: `${made.record.user}: ${opts.name}`,
        });
        return made;
      });
      io.out(`Token ${record.id} for "${record.user}" (${record.name}); shown once, keep it secret:`);
      io.out(token);
    });

  storeOptions(tokens.command('list'))
    .description('List tokens (id, account, label, created, revoked)')
    .action(async (opts: StoreCliOptions) => {
      const list = await withStore(opts, (store) => store.accounts.listTokens());
      if (list.length === 0) io.out('No tokens.');
      for (const t of list) io.out([t.id, t.user, t.name, t.createdAt, t.revokedAt ?? '-'].join('\t'));
    });

  storeOptions(tokens.command('revoke <id>'))
    .description('Revoke a token (its id from `tokens list`)')
    .action(async (id: string, opts: StoreCliOptions) => {
      await withStore(opts, async (store) => {
        if (!(await store.accounts.revokeToken(id)))
          throw new HematoError(`No token ${id} that is not revoked already.`, 'not_found');
        await store.accounts.audit({
          actor: 'cli',
          action: 'token.revoke',
          targetType: 'token',
          targetId: id,
        });
      });
      io.out(`Revoked token ${id}.`);
    });
}
