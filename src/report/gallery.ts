/**
 * The report's gallery: the flagged or corrected cells, five to a row, each crop with its label, the model's
 * probability, why it was flagged and where it comes from.
 */
import sharp from 'sharp';
import {
  bottom,
  classLabel,
  DRAFT,
  heading,
  INK,
  MARGIN,
  MUTED,
  oneLine,
  pct,
  RULE,
  width,
  type Doc,
  type Fonts,
} from './pdf-layout.js';

export interface GalleryCell {
  /** The cell's crop, PNG or JPEG. */
  crop: Buffer;
  /** The label the report counts (the reviewer's, when corrected). */
  label: string;
  /** The model's probability for its own label (`correctedFrom` when corrected), 0..1. */
  probability: number;
  /** Why the cell needs review, as a person would say it ("low confidence"…). */
  reasons: string[];
  /** The model's label, when a reviewer changed it. */
  correctedFrom?: string;
  /** Where the cell comes from (image file name), for finding it again. */
  caption?: string;
}

/** A gallery crop is drawn about 1.3 inches wide: 192 px is sharp in print at 150 dpi. */
const CROP_PX = 192;

/**
 * Crops as small JPEGs: pdfkit copies a JPEG into the PDF as it is but decodes and re-deflates a PNG in
 * JavaScript (seconds, and megabytes, for a large gallery). An RGB JPEG of at most twice the drawn size is
 * kept as it is. null: the crop could not be read.
 */
export async function prepareCrop(crop: Buffer): Promise<Buffer | null> {
  try {
    const meta = await sharp(crop).metadata();
    const small = (meta.width ?? Infinity) <= 2 * CROP_PX && (meta.height ?? Infinity) <= 2 * CROP_PX;
    if (meta.format === 'jpeg' && meta.channels === 3 && small) return crop;
    return await sharp(crop)
      .resize(CROP_PX, CROP_PX, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 85 })
      .toBuffer();
  } catch {
    return null;
  }
}

export function gallerySection(doc: Doc, f: Fonts, gallery: GalleryCell[], crops: (Buffer | null)[]): void {
  doc.addPage();
  heading(doc, f, `Flagged or corrected cells (${gallery.length})`);
  if (gallery.length === 0) {
    doc
      .font('regular')
      .fontSize(10)
      .fillColor(MUTED)
      .text('No cell was flagged for review or corrected.', MARGIN, doc.y);
    return;
  }
  const cols = 5;
  const gap = 10;
  const cellW = (width(doc) - gap * (cols - 1)) / cols;
  const imgH = cellW;
  const textH = 58;
  let y = doc.y + 4;
  gallery.forEach((cell, i) => {
    const col = i % cols;
    if (col === 0 && i > 0) y += imgH + textH + gap;
    if (col === 0 && y + imgH + textH > bottom(doc)) {
      doc.addPage();
      doc.y = doc.page.margins.top - 10;
      heading(doc, f, `Flagged or corrected cells (continued, ${i + 1}–${gallery.length})`);
      y = doc.y + 4;
    }
    const x = MARGIN + col * (cellW + gap);
    doc.rect(x, y, cellW, imgH).lineWidth(0.5).strokeColor(RULE).stroke();
    const crop = crops[i];
    if (crop) {
      doc.image(crop, x + 2, y + 2, { fit: [cellW - 4, imgH - 4], align: 'center', valign: 'center' });
    } else {
      // A damaged crop must not lose the rest of the report: its place says so.
      doc
        .font('regular')
        .fontSize(8)
        .fillColor(DRAFT)
        .text('Crop could not be read', x + 4, y + imgH / 2 - 5, { width: cellW - 8, align: 'center' });
    }
    let ty = y + imgH + 3;
    doc.font('bold').fontSize(8.5).fillColor(INK);
    oneLine(doc, f.text(classLabel(cell.label)), x, ty, cellW);
    ty += 11;
    const model = pct(100 * cell.probability, 0);
    if (cell.correctedFrom) {
      doc.font('bold').fontSize(7).fillColor(DRAFT);
      oneLine(doc, 'Corrected', x, ty, cellW);
      ty += 9;
    }
    const lines = [
      cell.correctedFrom ? `Model: ${classLabel(cell.correctedFrom)} ${model}` : `Model: ${model}`,
      // One reason a line, two at most: the cell's box has room for no more.
      ...(cell.reasons.length > 2
        ? [cell.reasons[0], `and ${cell.reasons.length - 1} more reasons`]
        : cell.reasons),
      cell.caption ?? '',
    ].filter(Boolean);
    doc.font('regular').fontSize(7).fillColor(MUTED);
    for (const line of lines) {
      oneLine(doc, f.text(line), x, ty, cellW);
      ty += 9;
    }
  });
}
