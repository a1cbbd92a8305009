/**
 * Every kind of job the server runs, registered in one place: adaptations and alignments (with model versions) and exports
 * (a large CSV of cases, a specimen's PDF report). The queue (jobs/) runs them all the same way: on SQLite in
 * this process, on PostgreSQL on whichever replica takes them, retried elsewhere when that replica dies.
 */
import type { JobQueue } from './jobs/index.js';
import { registerExports, type ExportDeps } from './exports.js';
import { registerAdaptations, type FineTuneSettings } from './models/adaptation.js';
import { registerAlignments } from './models/alignment.js';
import type { ModelRegistry } from './models/registry.js';

export interface JobKindDeps extends Omit<ExportDeps, 'limitSeconds'> {
  /** Model versions: adaptations run only with them. */
  registry?: ModelRegistry;
  /** When adaptations fine-tune rather than train a new head. */
  fineTune?: FineTuneSettings;
  limits?: { adaptationSeconds?: number; exportSeconds?: number };
}

export function registerJobKinds(jobs: JobQueue, deps: JobKindDeps): void {
  const { registry, limits, fineTune, ...exports } = deps;
  if (registry)
    registerAdaptations(jobs, {
      store: deps.store,
      registry,
      limitSeconds: limits?.adaptationSeconds,
      fineTune,
    });
  if (registry)
    registerAlignments(jobs, { store: deps.store, registry, limitSeconds: limits?.adaptationSeconds });
  registerExports(jobs, { ...exports, limitSeconds: limits?.exportSeconds });
}
