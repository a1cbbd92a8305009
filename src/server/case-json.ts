import { API_BASE as API, type CaseJson } from '../api/index.js';
import type { StoredCase } from './store/index.js';

/** The API view of a stored case (src/api's Case). */
export function caseJson(c: StoredCase): CaseJson {
  return {
    id: c.id,
    file: c.file,
    createdAt: c.createdAt,
    label: c.label,
    confidence: c.confidence,
    probabilities: c.probabilities,
    needsReview: c.needsReview,
    reviewReasons: c.reviewReasons,
    cells: c.cells,
    ...(c.message !== null ? { message: c.message } : {}),
    heatmapUrl: c.heatmapSha256 || c.hasHeatmapData ? `${API}/cases/${c.id}/heatmap.png` : null,
    imageUrl: `${API}/cases/${c.id}/image`,
    width: c.width,
    height: c.height,
    model: c.model,
    review: c.review,
    specimen: c.specimenId,
    ...(c.clinic !== null ? { clinic: c.clinic } : {}),
  };
}
