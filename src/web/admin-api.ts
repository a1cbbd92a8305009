/** Typed client for the admin routes: model versions and adaptations (src/api/models.ts). */
import type {
  AdaptationRequestJson,
  JobJsonShape,
  ModelVersionJson,
  ModelVersionListJson,
} from '../api/index.js';
import { request } from './api.js';

export interface HeldOutScore {
  accuracy: number;
  macroF1: number;
  reviewRate: number;
  silentErrors: number;
  silentErrorRate: number;
  perClass: Record<string, { support: number; precision: number; recall: number; f1: number }>;
}

/** An adaptation's result (server/models/adaptation.ts AdaptationResult). */
export interface AdaptationResult {
  baseVersion: number;
  candidateVersion: number;
  candidateSha256: string;
  counts: {
    trained: Record<string, number>;
    heldOut: Record<string, number>;
    /** Cells the stored candidate was trained on: all usable reviewed cells (absent from older jobs). */
    final?: Record<string, number>;
    ignored: Record<string, number>;
  };
  comparison: { heldOut: number; active: HeldOutScore; candidate: HeldOutScore };
}

export type Job = JobJsonShape;
export type ModelVersion = ModelVersionJson;

const post = <T>(path: string, body?: unknown) =>
  request<T>(path, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });

export const adminApi = {
  models: () => request<ModelVersionListJson>('/admin/models'),
  activate: (version: number) => post<ModelVersion>(`/admin/models/${version}/activate`),
  rollback: () => post<ModelVersion>('/admin/models/rollback'),
  adaptations: () => request<{ jobs: Job[] }>('/adaptations'),
  adaptation: (id: string) => request<Job>(`/adaptations/${encodeURIComponent(id)}`),
  startAdaptation: (body: AdaptationRequestJson) => post<Job>('/adaptations', body),
};
