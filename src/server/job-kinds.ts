/**
 * Every kind of job the server runs, registered in one place: adaptations (with model versions) and exports
 * (a large CSV of cases, a specimen's PDF report). The queue (jobs/) runs them all the same way: on SQLite in
 * this process, on PostgreSQL on whichever replica takes them, retried elsewhere when that replica dies.
 */
import type { JobQueue } from './jobs/index.js';
import { registerExports, type ExportDeps } from './exports.js';
import { registerAdaptations } from './models/adaptation.js';
import type { ModelRegistry } from './models/registry.js';

export interface JobKindDeps extends Omit<ExportDeps, 'limitSeconds'> {
  /** Model versions: adaptations run only with them. */
  registry?: ModelRegistry;
  limits?: { adaptationSeconds?: number; exportSeconds?: number };
}

export function registerJobKinds(jobs: JobQueue, deps: JobKindDeps): void {
  const { registry, limits, ...exports } = deps;
  if (registry)
    registerAdaptations(jobs, { store: deps.store, registry, limitSeconds: limits?.adaptationSeconds });
  registerExports(jobs, { ...exports, limitSeconds: limits?.exportSeconds });
}
