/** Typed client for the admin routes: model versions, adaptations and alignments (src/api/models.ts). */
import type {
  AdaptationJobJson,
  AdaptationRequestJson,
  AlignmentJobJson,
  AlignmentRequestJson,
  ModelVersionJson,
  ModelVersionListJson,
} from '../api/index.js';
import { request } from './api.js';

export type { AdaptationResultJson as AdaptationResult, HeldOutScore } from '../api/index.js';
export type Job = AdaptationJobJson;
export type ModelVersion = ModelVersionJson;
export type AlignmentJob = AlignmentJobJson;

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
  alignment: (id: string) => request<AlignmentJob>(`/alignments/${encodeURIComponent(id)}`),
  alignments: () => request<{ jobs: AlignmentJob[] }>('/alignments'),
  startAlignment: (body: AlignmentRequestJson) => post<AlignmentJob>('/alignments', body),
};
