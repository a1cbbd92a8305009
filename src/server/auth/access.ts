/**
 * Who may do what: the one owner of that rule. Every API operation has an access level here (by its
 * operationId; the guard refuses to start a server with an operation missing from the table), each level the
 * roles that have it, and a clinic account sees only what its clinic uploaded or created.
 */
import type { Role } from '../../api/index.js';
import type { Account } from '../store/index.js';

/**
 * public: anyone; self: any signed-in account, acting on itself (its password); read/upload/review/manage: a
 * signed-in account whose role has it.
 */
export type Access = 'public' | 'self' | 'read' | 'upload' | 'review' | 'manage';

export const ROLE_ACCESS: Record<Exclude<Access, 'public'>, readonly Role[]> = {
  self: ['clinic', 'reviewer', 'admin'],
  read: ['clinic', 'reviewer', 'admin'],
  upload: ['clinic', 'reviewer', 'admin'],
  review: ['reviewer', 'admin'],
  manage: ['admin'],
};

/** Every operation of API v1, by operationId. */
export const OPERATION_ACCESS: Record<string, Access> = {
  getHealth: 'public',
  getReady: 'public',
  getOpenApi: 'public',
  getSession: 'public',
  signIn: 'public',
  signOut: 'public',
  setUp: 'public',
  changePassword: 'self',
  getModel: 'read',
  listTeachingCells: 'read',
  getTeachingCellImage: 'read',
  predict: 'upload',
  listCases: 'read',
  exportCasesCsv: 'read',
  getCase: 'read',
  getCaseImage: 'read',
  getCaseHeatmap: 'read',
  cellCrop: 'read',
  reviewCase: 'review',
  reviewCell: 'review',
  deleteCase: 'manage',
  restoreCase: 'manage',
  createSpecimen: 'upload',
  // Who may create a specimen may correct its source, note and target; a clinic only its own (maySee).
  updateSpecimen: 'upload',
  // As a case: only an admin deletes (softly, with a reason) and restores.
  deleteSpecimen: 'manage',
  restoreSpecimen: 'manage',
  listSpecimens: 'read',
  getSpecimen: 'read',
  specimenCsv: 'read',
  specimenReport: 'read',
  signSpecimen: 'review',
  // As the synchronous exports (cases.csv, report.pdf); a clinic only its own clinic's (maySee).
  startCasesExport: 'read',
  startReportExport: 'read',
  getExport: 'read',
  downloadExport: 'read',
  listAudit: 'manage',
  listAccounts: 'manage',
  createAccount: 'manage',
  updateAccount: 'manage',
  listModelVersions: 'manage',
  activateModelVersion: 'manage',
  rollBackModel: 'manage',
  startAdaptation: 'manage',
  listAdaptations: 'manage',
  getAdaptation: 'manage',
  startAlignment: 'manage',
  listAlignments: 'manage',
  getAlignment: 'manage',
};

/** Routes without an operationId (not in the API document): the UI's files, the API docs, the device model. */
export function pathAccess(url: string): Access | undefined {
  if (url.startsWith('/api/v1/docs')) return 'public';
  if (url.startsWith('/models/')) return 'read';
  if (!url.startsWith('/api/')) return 'public';
  return undefined;
}

export function allowed(account: Account | null, access: Access): boolean {
  if (access === 'public') return true;
  return account !== null && !account.disabled && ROLE_ACCESS[access].includes(account.role);
}

/** The clinic a list is limited to: a clinic account's own; undefined (everything) for the others. */
export function clinicScope(account: Account | null): string | undefined {
  return account?.role === 'clinic' ? (account.clinic ?? '') : undefined;
}

/** Whether the account may see a case or specimen (a clinic account: only its own clinic's). */
export function maySee(account: Account | null, item: { clinic: string | null }): boolean {
  const scope = clinicScope(account);
  return scope === undefined || item.clinic === scope;
}
