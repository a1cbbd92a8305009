/**
 * The alignment job: the active model aligned to the lab's own stored images, without labels
 * (training/adapt.ts, as `hematovision adapt` does it, in a worker thread), stored as a new model version but
 * not activated — a person activates it (routes/models.ts). On any failure nothing is stored and the active
 * model stays.
 *
 * adaptModel reads folders, so the job writes the chosen images to a folder of its own under the store's tmp
 * folder and deletes it afterwards: the command line and the app then run the very same code (file listing,
 * even sampling, decoding), and at most a few hundred images sit on disk for seconds.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AlignmentResultJson } from '../../api/index.js';
import { HematoError } from '../../errors.js';
import type { ModelCard } from '../../model/types.js';
import { MIN_ADAPT_IMAGES } from '../../training/adapt.js';
import { adaptModelInThread } from '../../training/adapt-thread.js';
import type { JobQueue } from '../jobs/index.js';
import type { CaseStore, StoredCase } from '../store/index.js';
import type { ModelRegistry } from './registry.js';

export const ALIGNMENT = 'alignment';

/** Stages adaptModel goes through with its default two passes (for the progress share). */
const STAGES = 5;

export interface AlignmentInput {
  baseVersion: number;
  images: number;
}

export type AlignmentResult = AlignmentResultJson;

/** File endings adaptModel's listing reads, by the stored image's type. */
const EXTENSIONS: Record<string, string> = {
  'image/jpeg': '.jpg',
  'image/png': '.png',
  'image/tiff': '.tif',
  'image/bmp': '.bmp',
  'image/webp': '.webp',
};

/**
 * The most recent `max` stored images that are not deleted, one per distinct image (an image uploaded twice
 * would count twice in the statistics), without reading their bytes.
 */
export async function recentImages(store: CaseStore, max: number): Promise<StoredCase[]> {
  const seen = new Set<string>();
  const out: StoredCase[] = [];
  for await (const c of store.iterate({ sort: 'newest' })) {
    if (seen.has(c.imageSha256) || !EXTENSIONS[c.imageType]) continue;
    seen.add(c.imageSha256);
    out.push(c);
    if (out.length >= max) break;
  }
  return out;
}

/** Refuses at once (409) what the job would fail on: fewer stored images than alignment needs. */
export async function checkAlignable(store: CaseStore): Promise<void> {
  const n = (await recentImages(store, MIN_ADAPT_IMAGES)).length;
  if (n < MIN_ADAPT_IMAGES)
    throw new HematoError(
      `Aligning needs at least ${MIN_ADAPT_IMAGES} stored images of this lab; there are ${n}.`,
      'too_few_images',
      409,
    );
}

/**
 * adaptModel measures against the training statistics beside the model; a stored version is written out
 * without them, so they are copied from the startup model's folder when that file is the one the card names.
 */
function provideStats(modelPath: string, card: ModelCard, startupModelPath: string): void {
  const record = card.activationStats;
  if (!record) return; // adaptModel says clearly that the model carries none
  const target = join(dirname(modelPath), record.file);
  if (existsSync(target)) return;
  const source = join(dirname(startupModelPath), record.file);
  const sha = existsSync(source) ? createHash('sha256').update(readFileSync(source)).digest('hex') : null;
  if (sha !== record.sha256)
    throw new HematoError(
      `The active model's training statistics (${record.file}) are not on this server: align it with ` +
        '`hematovision adapt` where its folder is.',
      'no_training_stats',
      409,
    );
  copyFileSync(source, target);
}

export function registerAlignments(
  jobs: JobQueue,
  o: { store: CaseStore; registry: ModelRegistry; limitSeconds?: number },
): void {
  jobs.register(ALIGNMENT, {
    expireSeconds: o.limitSeconds ?? 1800,
    handler: async (raw, ctx) => {
      const input = raw as AlignmentInput;
      const { model: base, modelPath } = await o.registry.materialize(input.baseVersion);
      provideStats(modelPath, base.card as ModelCard, o.registry.startupModelPath);
      const work = join(o.store.tmpDir, `alignment-${ctx.job.id}`);
      // A run of this job stopped midway (a replica's restart) may have left its files: start clean.
      rmSync(work, { recursive: true, force: true });
      const imagesDir = join(work, 'images');
      mkdirSync(imagesDir, { recursive: true });
      try {
        await ctx.progress(0, 'Reading the stored images');
        const cases = await recentImages(o.store, input.images);
        for (const [i, c] of cases.entries())
          writeFileSync(join(imagesDir, `${i}${EXTENSIONS[c.imageType]}`), await o.store.readImage(c));
        // adaptModel reports per image within each stage (reading, the parent, each pass, the aligned model):
        // the share of STAGES done, recorded when it moves a point (each is a row write).
        let stage = 'Aligning';
        let stages = 0;
        let shown = 0;
        const aligned = await adaptModelInThread(
          {
            model: modelPath,
            data: [imagesDir],
            out: join(work, 'out'),
            lab: 'this lab',
            onStage: (s) => {
              stage = s;
              stages++;
              void ctx.progress(shown, s);
            },
            onProgress: (done, total) => {
              const f = 0.05 + 0.9 * Math.min(1, Math.max(0, stages - 1 + done / Math.max(total, 1)) / STAGES);
              if (Math.abs(f - shown) < 0.01) return;
              shown = f;
              void ctx.progress(f, stage);
            },
          },
          ctx.signal,
        );
        await ctx.progress(0.97, 'Storing the aligned model as a new model version');
        const stored = await o.store.models.add({
          sha256: aligned.card.modelSha256,
          name: aligned.card.name,
          card: aligned.card,
          onnx: readFileSync(aligned.modelPath),
          source: 'alignment',
          jobId: ctx.job.id,
        });
        const note = aligned.card.adaptation!;
        const result: AlignmentResult = {
          baseVersion: base.version,
          baseSha256: base.sha256,
          alignedVersion: stored.version,
          alignedSha256: stored.sha256,
          images: note.images,
          skipped: note.skipped,
          familiarity: note.familiarity,
          flagged: aligned.flagged,
          seconds: aligned.seconds,
        };
        return result;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  });
}
