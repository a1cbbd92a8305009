import type { Classifier } from './classifier.js';
import { renderHeatmapPng, type CamRegion } from './heatmap.js';
import { prepareImage, writeInput } from './inputs.js';
import type { CellPrediction, ImagePrediction } from './types.js';

export interface AnalyzeOptions {
  /** Also render the class activation map of each prediction as a PNG overlay. */
  heatmap?: boolean;
}

/** What HematoVision says of one image, with its size and (on request) the heat map overlay. */
export interface ImageAnalysis extends ImagePrediction {
  width: number;
  height: number;
  /** PNG: the image with the class activation map of the predicted class(es) overlaid; boxes drawn for cells. */
  heatmapPng?: Buffer;
}

/** Image → located cells → one batched network run → predictions (and a heat map on request). */
export async function analyzeImage(
  classifier: Classifier,
  input: Buffer | string,
  options: AnalyzeOptions = {},
): Promise<ImageAnalysis> {
  const prep = classifier.card.preprocessing;
  const heat = options.heatmap === true;
  const prepared = await prepareImage(input, prep, { keepImage: heat });
  const n = prepared.regions.length;
  const size = { width: prepared.width, height: prepared.height };
  if (n === 0) {
    return {
      ...size,
      label: null,
      confidence: 0,
      probabilities: {},
      needsReview: true,
      cells: [],
      message: 'No white blood cell was found in this image.',
      heatmapPng: heat && prepared.image ? await renderHeatmapPng(prepared.image, []) : undefined,
    };
  }
  const s = prep.inputSize;
  const batch = new Float32Array(n * 3 * s * s);
  prepared.regions.forEach((r, i) => writeInput(r.pixels, batch, i));
  const out = await classifier.run(batch, n, heat);
  const k = classifier.classes.length;
  const cells: CellPrediction[] = [];
  const cams: CamRegion[] = [];
  prepared.regions.forEach((r, i) => {
    const p = classifier.toPrediction(out.probabilities, i);
    if (r.box) cells.push({ ...p, box: r.box });
    if (out.cam) {
      const c = classifier.classes.indexOf(p.label);
      const cam = out.cam.slice((i * k + c) * 49, (i * k + c + 1) * 49);
      cams.push({ cam, ...r.square, box: r.box ?? undefined, label: p.label });
    }
  });
  const first = classifier.toPrediction(out.probabilities, 0);
  return {
    ...size,
    ...first,
    cells,
    heatmapPng: heat && prepared.image ? await renderHeatmapPng(prepared.image, cams) : undefined,
  };
}
