/**
 * The adaptation job: a candidate model from the active one, trained on the reviewed cells in the store (in a
 * worker thread) by the recipe their numbers call for (training/reviewed-choice.ts: a new head,
 * training/reviewed.ts, or fine-tuning, training/reviewed-finetune.ts), stored as a new model version but not
 * activated — a person compares and activates it (routes/models.ts). On any failure nothing is stored and the
 * active model stays.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AdaptationResultJson } from '../../api/index.js';
import type { Box } from '../../imaging/types.js';
import type { ModelCard } from '../../model/types.js';
import { chooseReviewedRecipe } from '../../training/reviewed-choice.js';
import { checkReviewed, type ReviewedCell } from '../../training/reviewed.js';
import {
  learnFromReviewedInThread,
  type FineTuneOverrides,
} from '../../training/reviewed-thread.js';
import type { JobQueue } from '../jobs/index.js';
import type { CaseStore, StoredCase } from '../store/index.js';
import type { ModelRegistry } from './registry.js';

export const ADAPTATION = 'adaptation';

export interface AdaptationInput {
  baseVersion: number;
  minCellsPerClass: number;
  holdOutFraction: number;
  seed: number;
}

/** The job's result: its shape is the API's (src/api/models.ts). */
export type AdaptationResult = AdaptationResultJson;

/** When adaptations fine-tune rather than train a new head (reviewed-choice.ts). */
export interface FineTuneSettings {
  /** The MobileNetV2 TFLite weights the models were built on (null: never fine-tune). */
  tflite: string | null;
  /** Fewest reviewed cells of every class for fine-tuning (default FINE_TUNE_MIN_CELLS_PER_CLASS). */
  minCellsPerClass?: number;
  /** Changes to the fine-tuning recipe (REVIEWED_FINE_TUNE): tests run a short one. */
  overrides?: FineTuneOverrides;
}

/** The reviewed cells of a stored case: each cell's latest review label (an image without cells: the image). */
function reviewedOf(c: StoredCase): { box: Box | null; label: string }[] {
  if (c.cells.length === 0) return c.review ? [{ box: null, label: c.review.label }] : [];
  return c.cells.flatMap((cell) => (cell.review ? [{ box: cell.box, label: cell.review.label }] : []));
}

/** Labels of every reviewed cell, without reading an image: the quick check before a job is queued. */
export async function reviewedLabels(store: CaseStore): Promise<{ label: string }[]> {
  const out: { label: string }[] = [];
  for await (const c of store.iterate({ reviewed: true }))
    for (const r of reviewedOf(c)) out.push({ label: r.label });
  return out;
}

/**
 * Every reviewed cell the model can learn from, with its image. Cells are grouped by the image's sha256,
 * not by case id: the held-back split is drawn from the groups (training/reviewed.ts), so the same reviewed
 * images split the same way in any store, and an image uploaded twice never sits on both sides.
 */
export async function reviewedCells(store: CaseStore, card: ModelCard): Promise<ReviewedCell[]> {
  const cells: ReviewedCell[] = [];
  for await (const c of store.iterate({ reviewed: true })) {
    const reviewed = reviewedOf(c).filter((r) => r.box !== null || card.preprocessing.crop === 'whole');
    if (reviewed.length === 0) continue;
    const image = await store.readImage(c);
    for (const r of reviewed) cells.push({ image, box: r.box, label: r.label, group: c.imageSha256 });
  }
  return cells;
}

/** Refuses at once (400) what the job would fail on: too few reviewed cells, no class in common. */
export async function checkAdaptable(store: CaseStore, card: ModelCard, minCellsPerClass: number): Promise<void> {
  checkReviewed(card.classes, await reviewedLabels(store), minCellsPerClass);
}

export function registerAdaptations(
  jobs: JobQueue,
  o: { store: CaseStore; registry: ModelRegistry; limitSeconds?: number; fineTune?: FineTuneSettings },
): void {
  jobs.register(ADAPTATION, {
    expireSeconds: o.limitSeconds ?? 1800,
    handler: async (raw, ctx) => {
      const input = raw as AdaptationInput;
      const { model: base, modelPath } = await o.registry.materialize(input.baseVersion);
      const card = base.card as ModelCard;
      await ctx.progress(0, 'Reading the reviewed cells');
      const cells = await reviewedCells(o.store, card);
      const choice = chooseReviewedRecipe(card.classes, cells, o.fineTune ?? { tflite: null });
      const outDir = join(o.store.tmpDir, `adaptation-${ctx.job.id}`);
      // A run of this job stopped midway (a replica's restart) may have left its files: start clean.
      rmSync(outDir, { recursive: true, force: true });
      mkdirSync(outDir, { recursive: true });
      try {
        const learned = await learnFromReviewedInThread(
          {
            modelPath,
            cells,
            outDir,
            minCellsPerClass: input.minCellsPerClass,
            holdOutFraction: input.holdOutFraction,
            seed: input.seed,
            ...(choice.kind === 'fine-tune' && o.fineTune?.tflite
              ? { fineTune: { ...o.fineTune.overrides, tflite: o.fineTune.tflite } }
              : {}),
            onProgress: (fraction, stage) => void ctx.progress(0.05 + 0.9 * fraction, stage),
          },
          ctx.signal,
        );
        await ctx.progress(0.97, 'Storing the candidate as a new model version');
        const stored = await o.store.models.add({
          sha256: learned.card.modelSha256,
          name: learned.card.name,
          card: learned.card,
          onnx: readFileSync(learned.modelPath),
          source: 'adaptation',
          jobId: ctx.job.id,
        });
        const result: AdaptationResult = {
          baseVersion: base.version,
          baseSha256: base.sha256,
          candidateVersion: stored.version,
          candidateSha256: stored.sha256,
          counts: learned.counts,
          comparison: learned.comparison,
          recipe: { ...learned.recipe, reason: choice.reason },
        };
        return result;
      } finally {
        rmSync(outDir, { recursive: true, force: true });
      }
    },
  });
}
