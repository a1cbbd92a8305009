/** Typed client for the HematoVision REST API (/api/v1); its shapes are the server's (src/api). */
import type {
  AccountJson,
  AuditListJson,
  SessionStateJson,
  CaseJson,
  CaseListJson,
  CaseListQueryJson,
  CellJson,
  DifferentialJson,
  FileErrorJson,
  HealthJson,
  PredictItemJson,
  PredictResponseJson,
  ReviewBodyJson,
  ReviewJson,
  NewSpecimenJson,
  PasswordChangeJson,
  SignoffJson,
  SpecimenCellJson,
  SpecimenDetailJson,
  SpecimenEditJson,
  SpecimenJson,
  SpecimenListJson,
  SpecimenListQueryJson,
  TeachingCellJson,
  TeachingSetJson,
} from '../api/index.js';
import { API_BASE, DEFAULT_MAX_FILES } from '../api/constants.js';
import type { ModelCard } from '../model/types.js';

export { EXTRA_REVIEW_LABELS } from '../api/constants.js';

export type CellResult = CellJson;
export type Review = ReviewJson;
/** A case; `reviews` (every review, oldest first) comes with GET /cases/:id only. */
export type CaseResult = CaseJson & { reviews?: ReviewJson[] };
export type CaseError = FileErrorJson;
export type PredictItem = PredictItemJson;
export type Differential = DifferentialJson;
export type PredictResponse = PredictResponseJson;
export type Health = HealthJson;
export type Specimen = SpecimenJson;
export type SpecimenCell = SpecimenCellJson;
export type SpecimenDetail = SpecimenDetailJson;
export type NewSpecimen = NewSpecimenJson;
export type Account = AccountJson;
export type SessionState = SessionStateJson;
export type AuditList = AuditListJson;
/** One cell of the bundled teaching set (GET /teaching): an expert-labelled PBC image. */
export type TeachingCellResult = TeachingCellJson;
export type TeachingSet = TeachingSetJson;

/** GET /cases's query as the URL carries it (booleans as text). */
export type CaseQuery = Omit<CaseListQueryJson, 'reviewed' | 'needsReview'> & {
  reviewed?: 'true' | 'false';
  needsReview?: 'true' | 'false';
};
export type ReviewInput = ReviewBodyJson;

export const MAX_FILES = DEFAULT_MAX_FILES;

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isCaseError(item: PredictItem): item is CaseError {
  return 'error' in item && !('id' in item);
}

const BASE = API_BASE;

export async function request<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${BASE}${path}`, { headers: { accept: 'application/json' }, ...init });
  } catch {
    throw new ApiError('The server cannot be reached. Check that HematoVision is running.', 0, 'network');
  }
  if (res.status === 401 && !path.startsWith('/session') && !path.startsWith('/setup')) {
    // Signed out meanwhile (session expired, account disabled): the app shows its sign-in page.
    window.dispatchEvent(new CustomEvent('hv:signed-out'));
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    let code = 'http_error';
    try {
      const body = (await res.json()) as { error?: string; message?: string };
      if (body.message) message = body.message;
      if (body.error) code = body.error;
    } catch {
      // Non-JSON error page: the status line is the best we have.
    }
    throw new ApiError(message, res.status, code);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

function queryString(q: Record<string, string | number | boolean | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { accept: 'application/json', 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export const api = {
  session: () => request<SessionState>('/session'),
  signIn: (name: string, password: string) => request<Account>('/session', json('POST', { name, password })),
  signOut: () => request<unknown>('/session', { method: 'DELETE' }),
  /** 204; the account's other sessions end, this one stays signed in. */
  changePassword: (change: PasswordChangeJson) => request<void>('/account/password', json('PUT', change)),
  setup: (input: { token: string; name: string; displayName: string; password: string }) =>
    request<Account>('/setup', json('POST', input)),
  audit: (q: { action?: string; limit?: number; offset?: number } = {}) =>
    request<AuditList>(`/audit${queryString(q)}`),
  restoreCase: (id: string) =>
    request<CaseResult>(`/cases/${encodeURIComponent(id)}/restore`, { method: 'POST' }),
  health: () => request<Health>('/health'),
  model: () => request<ModelCard>('/model'),
  predict(
    files: File[],
    options: { tta?: boolean; specimen?: string; signal?: AbortSignal } = {},
  ): Promise<PredictResponse> {
    const form = new FormData();
    for (const f of files) form.append('images', f, f.name);
    const path = `/predict${queryString({ tta: options.tta ? 'true' : undefined, specimen: options.specimen })}`;
    return request<PredictResponse>(path, { method: 'POST', body: form, signal: options.signal });
  },
  listCases: (q: CaseQuery) => request<CaseListJson>(`/cases${queryString(q)}`),
  getCase: (id: string) => request<CaseResult>(`/cases/${encodeURIComponent(id)}`),
  reviewCase: (id: string, input: ReviewInput) =>
    request<CaseResult>(`/cases/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify(input),
    }),
  deleteCase: (id: string, reason: string) =>
    request<unknown>(`/cases/${encodeURIComponent(id)}`, json('DELETE', { reason })),
  csvUrl: (q: Omit<CaseQuery, 'limit' | 'offset'>) => `${BASE}/cases.csv${queryString(q)}`,
  imageUrl: (c: CaseResult) => c.imageUrl || `${BASE}/cases/${encodeURIComponent(c.id)}/image`,
  heatmapUrl: (c: CaseResult) => c.heatmapUrl,
  teaching: () => request<TeachingSet>('/teaching'),
  createSpecimen: (input: NewSpecimen) =>
    request<Specimen>('/specimens', {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify(input),
    }),
  listSpecimens: (q: SpecimenListQueryJson = {}) => request<SpecimenListJson>(`/specimens${queryString(q)}`),
  getSpecimen: (id: string) => request<SpecimenDetail>(`/specimens/${encodeURIComponent(id)}`),
  updateSpecimen: (id: string, edit: SpecimenEditJson) =>
    request<Specimen>(`/specimens/${encodeURIComponent(id)}`, json('PATCH', edit)),
  deleteSpecimen: (id: string, reason: string) =>
    request<unknown>(`/specimens/${encodeURIComponent(id)}`, json('DELETE', { reason })),
  restoreSpecimen: (id: string) =>
    request<Specimen>(`/specimens/${encodeURIComponent(id)}/restore`, { method: 'POST' }),
  reviewCell: (caseId: string, cell: number, input: ReviewInput) =>
    request<CaseResult>(`/cases/${encodeURIComponent(caseId)}/cells/${cell}/review`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify(input),
    }),
  /** `reviewer` only when accounts are off: else the signer is the signed-in account. */
  signSpecimen: (id: string, reviewer?: string) =>
    request<SignoffJson>(
      `/specimens/${encodeURIComponent(id)}/sign`,
      json('POST', reviewer === undefined ? {} : { reviewer }),
    ),
  specimenCsvUrl: (id: string) => `${BASE}/specimens/${encodeURIComponent(id)}/cells.csv`,
};
