/** Typed client for the admin routes: model versions and adaptations (src/api/models.ts). */
import type {
  AdaptationRequestJson,
  AdaptationResultJson,
  HeldOutScoreJson,
  JobJsonShape,
  ModelVersionJson,
  ModelVersionListJson,
} from '../api/index.js';
import { request } from './api.js';

/** One model on the held-back reviewed cells. */
export type HeldOutScore = HeldOutScoreJson;
/** A succeeded adaptation's result (server/models/adaptation.ts). */
export type AdaptationResult = AdaptationResultJson;

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
