/**
 * The familiarity checks of a model whose head was retrained on reviewed cells (training/reviewed.ts). The
 * backbone is frozen, so the candidate's features of any input are the parent's: the parent's references
 * (class centres and training labs in feature space, fitted on its training images) and their thresholds
 * (quantiles of its validation images' distances) measure the candidate's inputs exactly as they measured
 * the parent's. They are read back from the parent's file and appended to the candidate's as they are.
 */
import { appendFamiliarity, readFamiliarity } from '../model/familiarity-graph.js';
import { cellDistance, referenceDistance, type FamiliarityReferences } from '../model/familiarity.js';
import type { FamiliarityRecord, ModelCard } from '../model/types.js';

export interface CarriedFamiliarity {
  /** The candidate's model file with the parent's familiarity outputs. */
  onnx: Uint8Array;
  /** The card's record: the parent's, less what described the parent's head. */
  record: FamiliarityRecord;
  /** 1 for each row of n×d raw features that the checks flag (unfamiliar cell or image). */
  flags: (x: Float32Array, n: number, d: number) => Uint8Array;
}

/**
 * The parent's familiarity checks on the candidate `onnx` (a file built on the parent's backbone), or null
 * when the parent has none. The references object is passed through whole, whatever checks it holds.
 */
export function carryFamiliarity(
  parentBytes: Uint8Array,
  parent: ModelCard,
  onnx: Uint8Array,
): CarriedFamiliarity | null {
  const fam = parent.familiarity;
  if (!fam) return null;
  const refs = readFamiliarity(parentBytes, { cell: fam.cell.components, image: fam.image.components });
  if (!refs) return null;
  // The review budget capped the parent's low-confidence threshold by its head's confidences on its
  // validation images; the candidate keeps that threshold, but its per-lab review rates are not the
  // candidate's (its review rate is measured on the held-back reviewed cells instead).
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { reviewBudget, ...record } = fam;
  return {
    onnx: appendFamiliarity(onnx, refs),
    record,
    flags: (x, n, d) => familiarityFlags(refs, fam, x, n, d),
  };
}

/** The unfamiliar_cell / unfamiliar_image decisions of the references on raw feature rows. */
function familiarityFlags(
  refs: FamiliarityReferences,
  fam: FamiliarityRecord,
  x: Float32Array,
  n: number,
  d: number,
): Uint8Array {
  const out = new Uint8Array(n);
  for (let r = 0; r < n; r++)
    out[r] =
      cellDistance(refs, x, d, r) > fam.cell.threshold ||
      referenceDistance(refs.image, x, d, r) > fam.image.threshold
        ? 1
        : 0;
  return out;
}
