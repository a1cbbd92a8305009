/** Typed client for the HematoVision REST API (/api/v1). */
import type { Box } from '../imaging/types.js';
import type { DomainCheck } from '../model/domain.js';
import type { ModelCard, ReviewReason } from '../model/types.js';

export interface CellResult {
  box: Box;
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
  needsReview: boolean;
  reviewReasons: ReviewReason[];
}

export interface Review {
  label: string;
  reviewer: string;
  note: string;
  reviewedAt: string;
}

export interface CaseResult {
  id: string;
  file: string;
  label: string | null;
  confidence: number;
  probabilities: Record<string, number>;
  needsReview: boolean;
  /** Its own review reasons and every reason of its cells. */
  reviewReasons: ReviewReason[];
  /** null when the model produced no heat map (no white cell found). */
  heatmapUrl: string | null;
  imageUrl: string;
  cells: CellResult[];
  message?: string;
  createdAt: string;
  /** Image size in pixels, when the server sends it (otherwise read from the loaded image). */
  width?: number;
  height?: number;
  /** The latest review; null when nobody has reviewed the case. */
  review?: Review | null;
  /** Every review, oldest first (GET /cases/:id only). */
  reviews?: Review[];
  /** The model that made this prediction, and whether it read each cell in 8 orientations (tta). */
  model?: { name: string; version: string; tta?: boolean };
}

/** One cell of the bundled teaching set (GET /teaching): an expert-labelled PBC image. */
export interface TeachingCellResult {
  id: string;
  label: string;
  subtype?: string;
  sourceFile: string;
  imageUrl: string;
  width: number;
  height: number;
}

export interface TeachingSet {
  source: string;
  license: string;
  modified: string;
  /** Why the list is empty, when the server has no teaching set. */
  message?: string;
  cells: TeachingCellResult[];
}

export interface CaseError {
  file: string;
  error: string;
  message: string;
}

export type PredictItem = CaseResult | CaseError;

export type { Differential } from '../model/differential.js';
import type { Differential } from '../model/differential.js';

export interface PredictResponse {
  cases: PredictItem[];
  differential: Differential;
  /** Several images from a model with familiarity checks: do they look like the labs it learned from? */
  domain?: DomainCheck;
}

export interface Health {
  status: string;
  /** `tta`: the model is calibrated for test-time augmentation. */
  model: { name: string; version: string; classes: string[]; tta?: boolean };
}

export interface CaseQuery {
  label?: string;
  reviewed?: 'true' | 'false';
  needsReview?: 'true' | 'false';
  file?: string;
  sort?: 'newest' | 'oldest' | 'least-confident' | 'most-confident';
  limit?: number;
  offset?: number;
}

export interface ReviewInput {
  reviewLabel: string;
  reviewer: string;
  note: string;
}

export const MAX_FILES = 50;

/**
 * Review labels the server accepts besides the model's classes (src/server/schemas.ts): a white cell of a
 * type the model does not know, and an image or box that holds no white cell.
 */
export const EXTRA_REVIEW_LABELS = ['other', 'not_a_white_cell'] as const;

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

const BASE = '/api/v1';

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${BASE}${path}`, { headers: { accept: 'application/json' }, ...init });
  } catch {
    throw new ApiError('The server cannot be reached. Check that HematoVision is running.', 0, 'network');
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

function queryString(q: CaseQuery): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

export const api = {
  health: () => request<Health>('/health'),
  model: () => request<ModelCard>('/model'),
  predict(files: File[], options: { tta?: boolean; signal?: AbortSignal } = {}): Promise<PredictResponse> {
    const form = new FormData();
    for (const f of files) form.append('images', f, f.name);
    const path = options.tta ? '/predict?tta=true' : '/predict';
    return request<PredictResponse>(path, { method: 'POST', body: form, signal: options.signal });
  },
  listCases: (q: CaseQuery) => request<{ cases: CaseResult[]; total: number }>(`/cases${queryString(q)}`),
  getCase: (id: string) => request<CaseResult>(`/cases/${encodeURIComponent(id)}`),
  reviewCase: (id: string, input: ReviewInput) =>
    request<CaseResult>(`/cases/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify(input),
    }),
  deleteCase: (id: string) => request<unknown>(`/cases/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  csvUrl: (q: Omit<CaseQuery, 'limit' | 'offset'>) => `${BASE}/cases.csv${queryString(q)}`,
  imageUrl: (c: CaseResult) => c.imageUrl || `${BASE}/cases/${encodeURIComponent(c.id)}/image`,
  heatmapUrl: (c: CaseResult) => c.heatmapUrl,
  teaching: () => request<TeachingSet>('/teaching'),
};
