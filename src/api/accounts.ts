/** The shapes of accounts, sign-in, first-start setup, the audit trail and soft delete. */
import { Type, type Static } from '@sinclair/typebox';
import { AUDIT_ACTIONS, AUDIT_TARGETS, PASSWORD_MIN, ROLES, UUID_PATTERN } from './constants.js';
import { nullableString, ref, stringEnum } from './shapes.js';

/** Login names: letters, digits and . _ - @ (an e-mail address works), 1–64 characters. */
const LOGIN_NAME = { minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' } as const;
/**
 * PASSWORD_MIN is in constants.ts, so the web app's forms read it without TypeBox; the upper bound keeps a
 * hash request cheap to refuse.
 */
const PASSWORD = { minLength: PASSWORD_MIN, maxLength: 1024 } as const;

export const Account = Type.Object(
  {
    name: Type.String({ description: 'Login name.' }),
    displayName: Type.String({ description: 'The name on reviews and signed reports.' }),
    role: stringEnum(ROLES, {
      description:
        'clinic: uploads, sees its own clinic’s specimens and cases; reviewer: reviews all and signs ' +
        'reports; admin: all of that, and accounts, deletes and the audit trail.',
    }),
    clinic: nullableString({ description: 'The clinic of a clinic account; null for the others.' }),
    disabled: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Account', description: 'A user account (never its password or hash).' },
);

export const SessionState = Type.Object({
  auth: Type.Boolean({ description: 'false: accounts are off (AUTH=off on a loopback address).' }),
  setupRequired: Type.Boolean({
    description: 'No account exists yet: open the setup link the server printed on its console.',
  }),
  account: Type.Unsafe<Static<typeof Account> | null>({
    anyOf: [{ $ref: 'Account#' }, { type: 'null' }],
    description: 'The signed-in account, or null.',
  }),
});

export const SignInBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

export const SetupBody = Type.Object(
  {
    token: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'From the link printed at first start.',
    }),
    name: Type.String({ ...LOGIN_NAME, description: 'The admin’s login name.' }),
    displayName: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }),
    password: Type.String({ ...PASSWORD, description: `At least ${PASSWORD_MIN} characters.` }),
  },
  { additionalProperties: false },
);

export const NewUser = Type.Object(
  {
    name: Type.String({ ...LOGIN_NAME, description: 'Login name, unique whatever its case.' }),
    displayName: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }),
    role: stringEnum(ROLES),
    clinic: Type.Optional(
      nullableString({ maxLength: 200, description: 'Required for a clinic account; none for the others.' }),
    ),
    password: Type.String({ ...PASSWORD, description: `At least ${PASSWORD_MIN} characters.` }),
  },
  { additionalProperties: false },
);

export const PasswordChange = Type.Object(
  {
    currentPassword: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'The password the account signs in with now.',
    }),
    newPassword: Type.String({ ...PASSWORD, description: `At least ${PASSWORD_MIN} characters.` }),
  },
  { additionalProperties: false },
);

export const UserPatch = Type.Object(
  { disabled: Type.Boolean({ description: 'A disabled account cannot sign in; its sessions end.' }) },
  { additionalProperties: false },
);

export const UserParams = Type.Object({ name: Type.String(LOGIN_NAME) });

export const AccountList = Type.Object({ accounts: Type.Array(ref(Account)) });

export const AuditEntry = Type.Object(
  {
    id: Type.Integer(),
    at: Type.String({ format: 'date-time' }),
    actor: Type.String({ description: 'Login name of who did it (`local` when accounts are off).' }),
    action: stringEnum(AUDIT_ACTIONS),
    targetType: stringEnum(AUDIT_TARGETS),
    targetId: Type.String(),
    detail: Type.String({
      description:
        'A delete’s reason, a review’s label, an export’s filter, why a sign-in failed (never a password)…',
    }),
    ip: nullableString({
      description:
        'The client address it came from (behind TRUST_PROXY, the forwarded one); null from the CLI.',
    }),
  },
  { $id: 'AuditEntry', description: 'One append-only record of who did what, when, to what.' },
);

export const AuditList = Type.Object({
  entries: Type.Array(ref(AuditEntry), { description: 'Newest first.' }),
  total: Type.Integer(),
});

export const AuditQuery = Type.Object(
  {
    targetType: Type.Optional(stringEnum(AUDIT_TARGETS)),
    targetId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    action: Type.Optional(stringEnum(AUDIT_ACTIONS)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  },
  { additionalProperties: false },
);

export const DeleteCaseBody = Type.Object(
  {
    reason: Type.String({
      minLength: 1,
      maxLength: 1000,
      pattern: '\\S',
      description: 'Why (kept in the audit trail).',
    }),
  },
  { additionalProperties: false },
);

export const RestoreParams = Type.Object({
  id: Type.String({ pattern: UUID_PATTERN, description: 'Case id (a UUID).' }),
});

export type AccountJson = Static<typeof Account>;
export type SessionStateJson = Static<typeof SessionState>;
export type SignInBodyJson = Static<typeof SignInBody>;
export type SetupBodyJson = Static<typeof SetupBody>;
export type NewUserJson = Static<typeof NewUser>;
export type PasswordChangeJson = Static<typeof PasswordChange>;
export type AuditEntryJson = Static<typeof AuditEntry>;
export type AuditListJson = Static<typeof AuditList>;
