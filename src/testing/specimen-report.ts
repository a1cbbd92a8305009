/** A specimen report for tests and the benchmark: a 200-cell count with some flagged and corrected cells. */
import sharp from 'sharp';
import { differential } from '../model/differential.js';
import type { ImagePrediction } from '../model/types.js';
import type { GalleryCell, SpecimenReport } from '../report/specimen-pdf.js';

export const REPORT_CLASSES = [
  'neutrophil',
  'lymphocyte',
  'monocyte',
  'eosinophil',
  'basophil',
  'ig',
  'erythroblast',
  'platelet',
];

/** Deterministic cell labels in roughly normal-blood proportions. */
const MIX: [string, number][] = [
  ['neutrophil', 0.58],
  ['lymphocyte', 0.28],
  ['monocyte', 0.07],
  ['eosinophil', 0.03],
  ['basophil', 0.01],
  ['ig', 0.01],
  ['erythroblast', 0.01],
  ['platelet', 0.01],
];

function labelsFor(n: number): string[] {
  const out: string[] = [];
  for (const [label, share] of MIX) for (let i = 0; i < Math.round(share * n); i++) out.push(label);
  while (out.length < n) out.push('neutrophil');
  return out.slice(0, n);
}

/** A small coloured disc on a pale background, PNG or JPEG, standing in for a cell crop. */
export async function fakeCrop(i: number, format: 'png' | 'jpeg' = i % 2 ? 'png' : 'jpeg'): Promise<Buffer> {
  const hue = (i * 47) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96">
    <rect width="96" height="96" fill="#f4e4d8"/>
    <circle cx="48" cy="48" r="30" fill="hsl(${hue},45%,60%)"/>
    <circle cx="${40 + (i % 5) * 3}" cy="46" r="14" fill="hsl(${(hue + 200) % 360},55%,30%)"/>
  </svg>`;
  const img = sharp(Buffer.from(svg));
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 85 }).toBuffer();
}

export async function sampleReport(
  options: { cells?: number; gallery?: number; signed?: boolean } = {},
): Promise<SpecimenReport> {
  const cells = options.cells ?? 200;
  const labels = labelsFor(cells);
  const predictions = [
    {
      label: null,
      confidence: 0,
      probabilities: {},
      needsReview: false,
      reviewReasons: [],
      cells: labels.map((label) => ({ label })),
    },
  ] as unknown as ImagePrediction[];
  const gallery: GalleryCell[] = [];
  for (let i = 0; i < (options.gallery ?? 12); i++) {
    gallery.push({
      crop: await fakeCrop(i),
      label: REPORT_CLASSES[i % REPORT_CLASSES.length],
      probability: 0.35 + (i % 6) * 0.05,
      reasons: i % 3 === 0 ? ['low confidence'] : i % 3 === 1 ? ['unlike the cell types it knows'] : [],
      ...(i % 3 === 2 ? { correctedFrom: REPORT_CLASSES[(i + 1) % REPORT_CLASSES.length] } : {}),
      caption: `smear-${String(Math.floor(i / 4) + 1).padStart(2, '0')}.jpg`,
    });
  }
  return {
    specimenId: 'SPEC-2026-0042',
    source: 'Ward 7, EDTA venous sample',
    note: 'Left shift suspected; count checked by a second reader.',
    createdAt: '2026-12-02T09:15:00.000Z',
    updatedAt: '2026-12-02T10:40:00.000Z',
    imageCount: 24,
    differential: differential(REPORT_CLASSES, predictions),
    unclassified: 3,
    targetCount: 200,
    needsReview: 4,
    gallery,
    model: {
      name: 'hematovision-wbc8',
      version: '2026.12.02',
      sha256: '7e28bd062ac8c8dffbe5d846edfdde049500dd6cf47e7ff37dc5da9786d2db94',
    },
    ...(options.signed === false ? {} : { reviewer: 'Dr A. Morales', signedAt: '2026-12-02T11:02:00.000Z' }),
    revision: 3,
    generatedAt: '2026-12-02T12:00:00.000Z',
  };
}
