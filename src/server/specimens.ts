/**
 * A specimen's state as the API and the report show it: its cells (reviewed label over predicted label), the
 * differential over them (model/differential.ts counts), progress toward the target count, the review
 * queue, and its report revision. Built from the store on each request: nothing derived is stored, so it can
 * never disagree with the cases and reviews it comes from.
 */
import { API_BASE as API, EXTRA_REVIEW_LABELS } from '../api/index.js';
import type { SpecimenCellJson, SpecimenDetailJson, SpecimenJson } from '../api/index.js';
import { differential } from '../model/differential.js';
import { REVIEW_REASON_TEXT, type ImagePrediction } from '../model/types.js';
import type { ModelCard } from '../model/types.js';
import type { GalleryCell, SpecimenReport } from '../report/specimen-pdf.js';
import type { CellCrops } from './cell-crops.js';
import type { ReportSource } from './routes/specimen-report.js';
import type { CaseStore, Signoff, Specimen, StoredCase } from './store/index.js';

const UNCLASSIFIED: readonly string[] = EXTRA_REVIEW_LABELS;

export const specimenPath = (id: string) => `${API}/specimens/${encodeURIComponent(id)}`;

export function specimenJson(s: Specimen): SpecimenJson {
  return {
    id: s.id,
    source: s.source,
    note: s.note,
    targetCount: s.targetCount,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    imageCount: s.imageCount,
    cellCount: s.cellCount,
    ...(s.clinic !== null ? { clinic: s.clinic } : {}),
  };
}

/** Every cell of a case as the specimen counts it; an image analysed as one cell is cell 0 (box null). */
export function specimenCells(c: StoredCase): SpecimenCellJson[] {
  const base = { caseId: c.id, file: c.file };
  const cropUrl = (i: number) => `${API}/cases/${c.id}/cells/${i}/crop.png`;
  if (c.cells.length === 0) {
    if (c.label === null) return []; // no white cell found: nothing to count
    return [
      {
        ...base,
        cell: 0,
        box: null,
        label: c.review?.label ?? c.label,
        predictedLabel: c.label,
        confidence: c.confidence,
        needsReview: c.needsReview,
        reviewReasons: c.reviewReasons,
        review: c.review,
        cropUrl: cropUrl(0),
      },
    ];
  }
  return c.cells.map((cell, i) => ({
    ...base,
    cell: i,
    box: cell.box,
    label: cell.review?.label ?? cell.label,
    predictedLabel: cell.label,
    confidence: cell.confidence,
    needsReview: cell.needsReview,
    reviewReasons: cell.reviewReasons,
    review: cell.review,
    cropUrl: cropUrl(i),
  }));
}

export interface SpecimenState {
  detail: SpecimenDetailJson;
  cases: StoredCase[];
  signoffs: Signoff[];
}

/**
 * The cells needing review, most doubtful first: a cell flagged for a reason other than low confidence
 * (unlike the cell types or labs the model knows, a damaged image) comes before every merely uncertain one,
 * because its confidence says nothing (a left-out cell type is often called at 0.9 and more); within each
 * group, lowest confidence first.
 */
export function reviewQueue(
  cells: readonly Pick<SpecimenCellJson, 'needsReview' | 'reviewReasons' | 'confidence'>[],
): number[] {
  const unlike = (c: (typeof cells)[number]) => (c.reviewReasons.some((r) => r !== 'low_confidence') ? 0 : 1);
  return cells
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => c.needsReview)
    .sort((a, b) => unlike(a.c) - unlike(b.c) || a.c.confidence - b.c.confidence || a.i - b.i)
    .map(({ i }) => i);
}

/** The specimen's differential, cells, queue and report revision. */
export async function specimenState(
  store: CaseStore,
  classes: readonly string[],
  s: Specimen,
): Promise<SpecimenState> {
  const cases: StoredCase[] = [];
  for await (const c of store.iterate({ specimen: s.id, sort: 'oldest' })) cases.push(c);
  const cells = cases.flatMap(specimenCells);
  const counted = cells.filter((c) => !UNCLASSIFIED.includes(c.label));
  // One prediction per counted cell, labelled as counted: differential() stays the one owner of counting.
  const asPredictions = counted.map((c) => ({ label: c.label, cells: [] }) as unknown as ImagePrediction);
  const diff = differential(classes, asPredictions);
  const queue = reviewQueue(cells);
  const signoffs = await store.signoffs(s.id);
  const last = signoffs.at(-1);
  const signed = last !== undefined && last.specimenVersion === s.version;
  const revision = last ? (signed ? last.revision : last.revision + 1) : 1;
  const path = specimenPath(s.id);
  return {
    cases,
    signoffs,
    detail: {
      specimen: specimenJson(s),
      differential: diff,
      unclassified: cells.length - counted.length,
      progress: {
        counted: diff.total,
        target: s.targetCount,
        percent: Math.min(100, (100 * diff.total) / s.targetCount),
      },
      needsReview: queue.length,
      cells,
      queue,
      signoffs: signoffs.map((o) => ({
        revision: o.revision,
        reviewer: o.reviewer,
        signedAt: o.signedAt,
        reportUrl: `${path}/report.pdf?revision=${o.revision}`,
      })),
      revision,
      signed,
      reportUrl: `${path}/report.pdf`,
    },
  };
}

/**
 * The report's input: the counts, the cells a reader must see (flagged by the model, or corrected by a
 * reviewer) with their crops, the model(s) that counted and the sign-off. The sha256 is the loaded model's
 * when every case was analysed by it (cases store name and version only).
 */
export async function buildReport(
  state: SpecimenState,
  crops: CellCrops,
  card: ModelCard,
  signoff: { reviewer: string; signedAt: string } | undefined,
): Promise<SpecimenReport> {
  const { detail, cases } = state;
  const byId = new Map(cases.map((c) => [c.id, c]));
  const shown = detail.cells.filter(
    (c) => c.reviewReasons.length > 0 || (c.review !== null && c.review.label !== c.predictedLabel),
  );
  const gallery: GalleryCell[] = [];
  for (const c of shown) {
    const corrected = c.review !== null && c.review.label !== c.predictedLabel;
    gallery.push({
      crop: await crops.png(byId.get(c.caseId) as StoredCase, c.cell),
      label: c.label,
      probability: c.confidence,
      reasons: c.needsReview ? c.reviewReasons.map((r) => REVIEW_REASON_TEXT[r]) : [],
      ...(corrected ? { correctedFrom: c.predictedLabel } : {}),
      caption: `${c.file}${c.box ? ` · cell ${c.cell + 1}` : ''}`,
    });
  }
  const models = [...new Set(cases.map((c) => `${c.model.name}\u0000${c.model.version}`))].map((k) => {
    const [name, version] = k.split('\u0000');
    return { name, version };
  });
  const loaded = models.length === 1 && models[0].name === card.name && models[0].version === card.version;
  const model =
    models.length === 0
      ? { name: card.name, version: card.version, sha256: card.modelSha256 }
      : {
          name: [...new Set(models.map((m) => m.name))].join(', '),
          version: models.map((m) => m.version).join(', '),
          sha256: loaded ? card.modelSha256 : 'not recorded (made by another model than the one loaded)',
        };
  const s = detail.specimen;
  return {
    specimenId: s.id,
    ...(s.source ? { source: s.source } : {}),
    ...(s.note ? { note: s.note } : {}),
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    imageCount: s.imageCount,
    differential: detail.differential,
    unclassified: detail.unclassified,
    targetCount: s.targetCount,
    needsReview: detail.needsReview,
    gallery,
    model,
    ...(signoff ? { reviewer: signoff.reviewer, signedAt: signoff.signedAt } : {}),
    revision: detail.revision,
  };
}

/**
 * What a report of the specimen is: with `revision`, that signed revision's frozen PDF; without, the last
 * signed PDF while nothing changed since, else the report to render as the specimen is now. Null when there
 * is no such signed revision. The synchronous route and the export job both ask here.
 */
export async function reportSource(
  store: CaseStore,
  classes: readonly string[],
  crops: CellCrops,
  card: ModelCard,
  s: Specimen,
  revision: number | undefined,
): Promise<ReportSource | null> {
  const signoffs = await store.signoffs(s.id);
  const frozen =
    revision ?? (signoffs.at(-1)?.specimenVersion === s.version ? signoffs.at(-1)?.revision : undefined);
  if (frozen !== undefined) {
    const o = signoffs.find((x) => x.revision === frozen);
    const pdf = o ? await store.readSignedReport(s.id, frozen) : null;
    if (!o || !pdf) return null;
    return {
      frozen: pdf,
      name: { specimenId: s.id, revision: o.revision, reviewer: o.reviewer, signedAt: o.signedAt },
    };
  }
  return { report: await buildReport(await specimenState(store, classes, s), crops, card, undefined) };
}
