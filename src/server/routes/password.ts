/**
 * An account changes its own password (the current one required); its other sessions end, so whoever knew
 * the old password is signed out everywhere but here. Admins reset another account's with
 * `hematovision users password` (src/cli/commands/accounts.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorReply, PasswordChange } from '../../api/index.js';
import { ref } from '../../api/shapes.js';
import { HematoError } from '../../errors.js';
import { sessionOf } from '../auth/guard.js';
import { changePassword } from '../auth/users.js';
import type { CaseStore } from '../store/index.js';

const errors = { '4xx': ref(ErrorReply), '5xx': ref(ErrorReply) };

export const passwordRoutes: FastifyPluginAsyncTypebox<{ store: CaseStore }> = async (app, { store }) => {
  app.put(
    '/account/password',
    {
      schema: {
        operationId: 'changePassword',
        summary: 'Change your own password (the current one required); your other sessions end',
        description:
          'Any signed-in account, for itself. The session this request came with stays signed in; every ' +
          'other session of the account ends. API tokens are not affected (revoke them apart). A wrong ' +
          'current password: 403 wrong_password.',
        tags: ['accounts'],
        body: PasswordChange,
        response: { 204: Type.Null({ description: 'Changed' }), ...errors },
      },
    },
    async (request, reply) => {
      if (!app.auth.enabled) throw new HematoError('Accounts are off on this server.', 'auth_off', 409);
      const account = request.account!;
      const { currentPassword, newPassword } = request.body;
      await changePassword(
        store.accounts,
        account,
        { current: currentPassword, next: newPassword },
        sessionOf(request),
      );
      await store.accounts.audit({
        actor: account.name,
        action: 'password.change',
        targetType: 'user',
        targetId: account.name,
        detail: 'other sessions ended',
        ip: request.ip,
      });
      return reply.code(204).send(null);
    },
  );
};
