/** Plain values of API v1 that the web app needs at run time (no TypeBox: keeps its bundle small). */

/** Base path of API v1. */
export const API_BASE = '/api/v1';

/** Images per predict request, unless the server is started with another limit. */
export const DEFAULT_MAX_FILES = 50;

/**
 * Review labels accepted besides the model's classes: `other` is a white cell of a type the model does not
 * know (basophil, blast, ...), `not_a_white_cell` an image or box that holds no white cell (red cell,
 * platelet, artefact, empty field).
 */
export const EXTRA_REVIEW_LABELS = ['other', 'not_a_white_cell'] as const;

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export const CASE_SORTS = ['newest', 'oldest', 'least-confident', 'most-confident'] as const;
export type CaseSort = (typeof CASE_SORTS)[number];

/** A list's page when the query does not say (GET /cases, GET /specimens): the schemas' defaults, and the handlers'. */
export const LIST_DEFAULTS = { limit: 50, offset: 0 } as const;

/** A specimen id's length once trimmed. */
export const SPECIMEN_ID_MAX = 64;
export const SPECIMEN_TARGETS = [100, 200] as const;
export const SPECIMEN_SORTS = ['newest', 'oldest', 'updated', 'id'] as const;

/**
 * The shortest password any account may have (the schemas, the server's check and the web forms all read it
 * here). Long passphrases are welcome.
 */
export const PASSWORD_MIN = 10;

/** Account roles: `clinic` uploads and sees its own clinic's work, `reviewer` reviews all and signs, `admin` manages. */
export const ROLES = ['clinic', 'reviewer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What the audit trail records. */
export const AUDIT_ACTIONS = [
  'create',
  'update',
  'review',
  'sign',
  'export',
  'delete',
  'restore',
  'user.create',
  'user.disable',
  'user.enable',
  'token.create',
  'token.revoke',
  'sign-in',
  'sign-in.failed',
  'sign-out',
  'password.change',
  'password.reset',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];
export const AUDIT_TARGETS = ['case', 'cases', 'specimen', 'user', 'token'] as const;
export type AuditTarget = (typeof AUDIT_TARGETS)[number];

/** The session cookie's name (HttpOnly; SameSite=Strict; Secure over TLS). */
export const SESSION_COOKIE = 'hv_session';
