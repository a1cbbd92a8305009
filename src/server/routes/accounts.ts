/**
 * Accounts: the session (who am I, sign in, sign out), the first-start setup of the admin, the admin's list
 * of accounts (create, disable), and the audit trail.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  AccountList,
  AuditList,
  AuditQuery,
  ErrorReply,
  NewUser,
  SessionState,
  SetupBody,
  SignInBody,
  UserParams,
  UserPatch,
  Account as AccountSchema,
} from '../../api/index.js';
import { ref } from '../../api/shapes.js';
import { HematoError } from '../../errors.js';
import { actor, sessionOf } from '../auth/guard.js';
import { sha256Hex, verifyPassword } from '../auth/secrets.js';
import { createAccount } from '../auth/users.js';
import type { Account, CaseStore } from '../store/index.js';

const errors = { '4xx': ref(ErrorReply), '5xx': ref(ErrorReply) };

/** The API view of an account (the store's, which never holds the hash in this shape). */
export function accountJson(a: Account) {
  return {
    name: a.name,
    displayName: a.displayName,
    role: a.role,
    clinic: a.clinic,
    disabled: a.disabled,
    createdAt: a.createdAt,
  };
}

export const accountRoutes: FastifyPluginAsyncTypebox<{ store: CaseStore }> = async (app, { store }) => {
  const { accounts } = store;
  const auth = app.auth;

  app.get(
    '/session',
    {
      schema: {
        operationId: 'getSession',
        summary: 'Whether accounts are on, whether setup is needed, and who is signed in',
        tags: ['accounts'],
        response: { 200: SessionState, ...errors },
      },
    },
    async (request) => ({
      auth: auth.enabled,
      setupRequired: auth.enabled && auth.setupToken !== null,
      account: auth.enabled && request.account ? accountJson(request.account) : null,
    }),
  );

  app.post(
    '/session',
    {
      schema: {
        operationId: 'signIn',
        summary: 'Sign in: sets the session cookie (HttpOnly, SameSite=Strict, Secure over TLS)',
        tags: ['accounts'],
        body: SignInBody,
        response: { 200: ref(AccountSchema), ...errors },
      },
    },
    async (request, reply) => {
      if (!auth.enabled) throw new HematoError('Accounts are off on this server.', 'auth_off', 409);
      const name = request.body.name.trim();
      const user = await accounts.findUser(name);
      const ok = await verifyPassword(user?.passwordHash ?? null, request.body.password);
      if (!user || !ok || user.disabled) {
        // The name tried and why it failed, for the admin (never the password); the client sees one answer.
        await accounts.audit({
          actor: 'anonymous',
          action: 'sign-in.failed',
          targetType: 'user',
          targetId: user?.name ?? name,
          detail: !user ? 'no such account' : !ok ? 'wrong password' : 'account disabled',
          ip: request.ip,
        });
        throw new HematoError('Wrong name or password (or the account is disabled).', 'bad_credentials', 401);
      }
      await auth.startSession(request, reply, user);
      await accounts.audit({
        actor: user.name,
        action: 'sign-in',
        targetType: 'user',
        targetId: user.name,
        ip: request.ip,
      });
      return accountJson(user);
    },
  );

  app.delete(
    '/session',
    {
      schema: {
        operationId: 'signOut',
        summary: 'Sign out: ends the session and clears its cookie',
        tags: ['accounts'],
        response: { 204: Type.Null({ description: 'Signed out' }), ...errors },
      },
    },
    async (request, reply) => {
      // The session's account, looked up (by the guard) before the session ends; a bearer token has none.
      const account = auth.enabled && sessionOf(request) !== undefined ? request.account : null;
      await auth.endSession(request, reply);
      if (account)
        await accounts.audit({
          actor: account.name,
          action: 'sign-out',
          targetType: 'user',
          targetId: account.name,
          ip: request.ip,
        });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/setup',
    {
      schema: {
        operationId: 'setUp',
        summary: 'First start: create the admin account with the one-time link printed on the console',
        tags: ['accounts'],
        body: SetupBody,
        response: { 201: ref(AccountSchema), ...errors },
      },
    },
    async (request, reply) => {
      const expected = auth.setupToken;
      if (!auth.enabled || expected === null)
        throw new HematoError('This server is set up already: sign in.', 'setup_done', 409);
      // Compared as hashes: equal length, so no early exit that times the prefix.
      if (sha256Hex(request.body.token) !== sha256Hex(expected))
        throw new HematoError(
          'This setup link is not valid: use the one the server printed when it started.',
          'bad_setup_token',
          403,
        );
      const { name, displayName, password } = request.body;
      let created;
      try {
        created = await createAccount(
          accounts,
          { name, displayName, role: 'admin', password },
          { onlyIfNone: true },
        );
      } catch (err) {
        // Someone made an account meanwhile (another replica's setup, the CLI): the link is spent.
        if (err instanceof HematoError && err.code === 'setup_done') auth.setupToken = null;
        throw err;
      }
      auth.setupToken = null;
      await accounts.audit({
        actor: name,
        action: 'user.create',
        targetType: 'user',
        targetId: name,
        detail: 'admin (setup)',
        ip: request.ip,
      });
      await auth.startSession(request, reply, created);
      return reply.code(201).send(accountJson(created));
    },
  );

  app.get(
    '/accounts',
    {
      schema: {
        operationId: 'listAccounts',
        summary: 'Every account (admins only)',
        tags: ['accounts'],
        response: { 200: AccountList, ...errors },
      },
    },
    async () => ({ accounts: (await accounts.listUsers()).map(accountJson) }),
  );

  app.post(
    '/accounts',
    {
      schema: {
        operationId: 'createAccount',
        summary: 'Create an account (admins only)',
        tags: ['accounts'],
        body: NewUser,
        response: { 201: ref(AccountSchema), ...errors },
      },
    },
    async (request, reply) => {
      const { name, role } = request.body;
      const created = await createAccount(accounts, request.body);
      await accounts.audit({
        actor: actor(request),
        action: 'user.create',
        targetType: 'user',
        targetId: name,
        detail: role,
        ip: request.ip,
      });
      return reply.code(201).send(accountJson(created));
    },
  );

  app.patch(
    '/accounts/:name',
    {
      schema: {
        operationId: 'updateAccount',
        summary: 'Disable or enable an account (admins only); disabling ends its sessions',
        tags: ['accounts'],
        params: UserParams,
        body: UserPatch,
        response: { 200: ref(AccountSchema), ...errors },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { disabled } = request.body;
      if (disabled && request.account?.name.toLowerCase() === name.toLowerCase())
        throw new HematoError('You cannot disable your own account.', 'invalid_request');
      if (!(await accounts.setDisabled(name, disabled)))
        throw new HematoError(`No account "${name}".`, 'not_found', 404);
      await accounts.audit({
        actor: actor(request),
        action: disabled ? 'user.disable' : 'user.enable',
        targetType: 'user',
        targetId: name,
        ip: request.ip,
      });
      return accountJson((await accounts.findUser(name))!);
    },
  );

  app.get(
    '/audit',
    {
      schema: {
        operationId: 'listAudit',
        summary: 'The audit trail, newest first (admins only)',
        description:
          'Append-only: who created, reviewed, signed, exported, deleted or restored what, and when; a ' +
          'delete’s reason is its detail.',
        tags: ['accounts'],
        querystring: AuditQuery,
        response: { 200: AuditList, ...errors },
      },
    },
    async (request) => {
      const { limit = 100, offset = 0, ...filter } = request.query;
      return accounts.auditEntries({ ...filter, limit, offset });
    },
  );
};
