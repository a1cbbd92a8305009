import type { StoredCase } from './store/index.js';

/** Base path of API v1. */
export const API = '/api/v1';

/** The API view of a stored case. */
export function caseJson(c: StoredCase) {
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
  };
}
