/**
 * The PDF report of one specimen: header and sign-off, the differential as a table and a bar chart, the gallery
 * of flagged or corrected cells with their crops, and the model that produced the counts. Pure: the input in,
 * the PDF's bytes out (nothing read from the case store or written to disk).
 */
import { existsSync } from 'node:fs';
import PDFDocument from 'pdfkit';
import sharp from 'sharp';
import type { Differential } from '../model/differential.js';

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

export interface SpecimenReport {
  specimenId: string;
  source?: string;
  note?: string;
  /** ISO 8601 times. */
  createdAt: string;
  updatedAt: string;
  imageCount: number;
  /** The specimen's counts (model/differential.ts), with reviewers' corrections applied. */
  differential: Differential;
  /** Cells counted in no class (reviewed as "other" or "not a white cell", or no label). */
  unclassified: number;
  /** White cells the count aims for (100 or 200 in most labs). */
  targetCount?: number;
  /** Cells still needing review. */
  needsReview: number;
  gallery: GalleryCell[];
  model: { name: string; version: string; sha256: string };
  reviewer?: string;
  /** ISO 8601; without it the report is a draft. */
  signedAt?: string;
  revision: number;
  /** When the PDF is made (default: now); fixed in tests so the bytes are reproducible. */
  generatedAt?: string;
}

export const DISCLAIMER =
  'HematoVision is not a medical device; results must be reviewed by a qualified person.';

const A4: [number, number] = [595.28, 841.89];
const MARGIN = 50;
const FOOTER = 34;
const INK = '#1b1f24';
const MUTED = '#4b5563';
const RULE = '#d3d8df';
const BAR = '#2b6a94';
const DRAFT = '#a32020';

/** DejaVu Sans covers any specimen id or note a lab types; Helvetica (built in) is the fallback. */
const DEJAVU = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/dejavu', '/usr/share/fonts/TTF'];

interface Fonts {
  regular: string;
  bold: string;
  mono: string;
  /** Helvetica and Courier only draw Windows-1252: other characters are replaced so the text stays legible. */
  text(s: string): string;
}

function fonts(builtIn: boolean): Fonts {
  for (const dir of builtIn ? [] : DEJAVU) {
    const regular = `${dir}/DejaVuSans.ttf`;
    const bold = `${dir}/DejaVuSans-Bold.ttf`;
    const mono = `${dir}/DejaVuSansMono.ttf`;
    if (existsSync(regular) && existsSync(bold) && existsSync(mono))
      return { regular, bold, mono, text: (s) => s };
  }
  const cp1252 = new Set([...'€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ']);
  return {
    regular: 'Helvetica',
    bold: 'Helvetica-Bold',
    mono: 'Courier',
    text: (s) => [...s].map((ch) => (ch.charCodeAt(0) < 256 || cp1252.has(ch) ? ch : '?')).join(''),
  };
}

const SPECIAL: Record<string, string> = {
  ig: 'Immature granulocyte',
  other: 'Other white cell',
  not_a_white_cell: 'Not a white cell',
};

export function classLabel(label: string): string {
  const key = label.toLowerCase();
  if (SPECIAL[key]) return SPECIAL[key];
  const words = key.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** "2026-12-02 13:05 UTC": the same on every machine, unlike a locale format. */
function when(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function pct(x: number, digits = 1): string {
  return `${x.toFixed(digits)}%`;
}

/** A gallery crop is drawn about 1.3 inches wide: 192 px is sharp in print at 150 dpi. */
const CROP_PX = 192;

/**
 * Crops as small JPEGs: pdfkit copies a JPEG into the PDF as it is but decodes and re-deflates a PNG in
 * JavaScript (seconds, and megabytes, for a large gallery). An RGB JPEG of at most twice the drawn size is
 * kept as it is. null: the crop could not be read.
 */
async function prepareCrop(crop: Buffer): Promise<Buffer | null> {
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

export interface RenderOptions {
  /** Use the PDF's built-in Helvetica even when DejaVu Sans is installed (what a machine without it gets). */
  builtInFont?: boolean;
}

/** Renders the report; resolves to the PDF's bytes. */
export async function renderSpecimenPdf(
  report: SpecimenReport,
  options: RenderOptions = {},
): Promise<Buffer> {
  const crops = await Promise.all(report.gallery.map((g) => prepareCrop(g.crop)));
  const f = fonts(options.builtInFont === true);
  const generated = new Date(report.generatedAt ?? Date.now());
  const doc = new PDFDocument({
    size: A4,
    margins: { top: MARGIN, left: MARGIN, right: MARGIN, bottom: MARGIN + FOOTER },
    bufferPages: true,
    info: {
      Title: f.text(`Specimen report ${report.specimenId}`),
      Author: 'HematoVision',
      Subject: f.text(`Differential, flagged cells and model for specimen ${report.specimenId}`),
      CreationDate: generated,
      ModDate: generated,
    },
  });
  doc.registerFont('regular', f.regular);
  doc.registerFont('bold', f.bold);
  doc.registerFont('mono', f.mono);
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  try {
    header(doc, f, report, generated);
    differentialSection(doc, f, report);
    modelSection(doc, f, report);
    gallerySection(doc, f, report, crops);
    footers(doc, f, report);
    doc.end();
  } catch (err) {
    doc.end();
    throw err;
  }
  return done;
}

type Doc = PDFKit.PDFDocument;

const width = (doc: Doc) => doc.page.width - doc.page.margins.left - doc.page.margins.right;
const bottom = (doc: Doc) => doc.page.height - doc.page.margins.bottom;

function heading(doc: Doc, f: Fonts, text: string): void {
  doc.moveDown(0.8).font('bold').fontSize(13).fillColor(INK).text(f.text(text), MARGIN);
  const y = doc.y + 2;
  doc
    .moveTo(MARGIN, y)
    .lineTo(MARGIN + width(doc), y)
    .lineWidth(0.5)
    .strokeColor(RULE)
    .stroke();
  doc.y = y + 6;
}

/**
 * One line of text cut to `w` points with an ellipsis: pdfkit wraps at spaces even with lineBreak off, and a
 * wrapped label would run into the line below.
 */
function oneLine(
  doc: Doc,
  text: string,
  x: number,
  y: number,
  w: number,
  align: 'left' | 'right' = 'left',
): void {
  let t = text;
  if (doc.widthOfString(t) > w) {
    while (t.length > 1 && doc.widthOfString(`${t}…`) > w) t = t.slice(0, -1);
    t = `${t.trimEnd()}…`;
  }
  const dx = align === 'right' ? w - doc.widthOfString(t) : 0;
  doc.text(t, x + dx, y, { lineBreak: false });
}

/** Keeps a block of `height` points on one page. */
function ensureRoom(doc: Doc, height: number): void {
  if (doc.y + height > bottom(doc)) doc.addPage();
}

function field(doc: Doc, f: Fonts, name: string, value: string, x: number, y: number, w: number): void {
  doc.font('regular').fontSize(8).fillColor(MUTED).text(f.text(name.toUpperCase()), x, y, { width: w });
  doc
    .font('regular')
    .fontSize(10)
    .fillColor(INK)
    .text(f.text(value), x, y + 11, { width: w });
}

function header(doc: Doc, f: Fonts, r: SpecimenReport, generated: Date): void {
  doc.font('bold').fontSize(9).fillColor(MUTED).text('HEMATOVISION · SPECIMEN REPORT', MARGIN, MARGIN);
  doc
    .font('bold')
    .fontSize(20)
    .fillColor(INK)
    .text(f.text(r.specimenId), MARGIN, MARGIN + 14, { width: width(doc) });
  const signed = !!(r.reviewer && r.signedAt);
  const status = signed ? `Signed off by ${r.reviewer} on ${when(r.signedAt)}` : 'NOT SIGNED — draft';
  doc
    .moveDown(0.2)
    .font('bold')
    .fontSize(11)
    .fillColor(signed ? '#1b5530' : DRAFT)
    .text(f.text(status), MARGIN, doc.y, { width: width(doc) });

  const top = doc.y + 10;
  const col = width(doc) / 4;
  field(doc, f, 'Created', when(r.createdAt), MARGIN, top, col - 8);
  field(doc, f, 'Last updated', when(r.updatedAt), MARGIN + col, top, col - 8);
  field(doc, f, 'Report made', when(generated.toISOString()), MARGIN + 2 * col, top, col - 8);
  field(doc, f, 'Revision', String(r.revision), MARGIN + 3 * col, top, col - 8);
  doc.y = top + 30;
  if (r.source) {
    field(doc, f, 'Source', r.source, MARGIN, doc.y, width(doc));
    doc.moveDown(0.3);
  }
  if (r.note) {
    field(doc, f, 'Note', r.note, MARGIN, doc.y, width(doc));
    doc.moveDown(0.3);
  }
}

function differentialSection(doc: Doc, f: Fonts, r: SpecimenReport): void {
  const d = r.differential;
  heading(doc, f, 'Differential');
  const target = r.targetCount ? ` of the ${r.targetCount} aimed for` : '';
  doc
    .font('regular')
    .fontSize(10)
    .fillColor(INK)
    .text(
      f.text(
        `${d.total} white cells counted${target}, from ${r.imageCount} image${r.imageCount === 1 ? '' : 's'}. ` +
          `${r.needsReview} cell${r.needsReview === 1 ? '' : 's'} still need${r.needsReview === 1 ? 's' : ''} review; ` +
          `${r.unclassified} unclassified.`,
      ),
      MARGIN,
      doc.y,
      { width: width(doc) },
    );
  if (r.targetCount && d.total < r.targetCount)
    doc
      .fillColor(DRAFT)
      .text(f.text(`The count is short of its target by ${r.targetCount - d.total} cells.`));
  doc.moveDown(0.6);

  const white = Object.keys(d.percentages);
  const others = Object.keys(d.per100White);
  const rows: { label: string; count: string; value: string; strong?: boolean }[] = [
    ...white.map((c) => ({
      label: classLabel(c),
      count: String(d.counts[c] ?? 0),
      value: pct(d.percentages[c]),
    })),
    { label: 'White cells', count: String(d.total), value: d.total ? '100%' : '—', strong: true },
    ...others.map((c) => ({
      label: classLabel(c),
      count: String(d.counts[c] ?? 0),
      value: `${d.per100White[c].toFixed(1)} / 100 WBC`,
    })),
    { label: 'Unclassified', count: String(r.unclassified), value: 'not counted' },
  ];
  const rowH = 15;
  const tableW = 250;
  ensureRoom(doc, rowH * (rows.length + 1) + 8);
  const x0 = MARGIN;
  const tableTop = doc.y;
  let y = tableTop;
  const cols = [x0, x0 + 120, x0 + 160];
  doc.font('bold').fontSize(8).fillColor(MUTED);
  doc.text('CELL TYPE', cols[0], y);
  doc.text('COUNT', cols[1], y, { width: 34, align: 'right' });
  doc.text('SHARE', cols[2], y, { width: tableW - 160, align: 'right' });
  y += rowH - 3;
  for (const [i, row] of rows.entries()) {
    if (row.strong || i === white.length + 1) {
      doc
        .moveTo(x0, y - 2)
        .lineTo(x0 + tableW, y - 2)
        .lineWidth(0.5)
        .strokeColor(RULE)
        .stroke();
    }
    doc
      .font(row.strong ? 'bold' : 'regular')
      .fontSize(9.5)
      .fillColor(INK);
    oneLine(doc, f.text(row.label), cols[0], y, 116);
    oneLine(doc, row.count, cols[1], y, 34, 'right');
    oneLine(doc, f.text(row.value), cols[2], y, tableW - 160, 'right');
    y += rowH;
  }
  const chartBottom = barChart(doc, f, r, x0 + tableW + 25, tableTop, width(doc) - tableW - 25);
  doc.x = MARGIN;
  doc.y = Math.max(y, chartBottom) + 4;
}

/** Horizontal bars of the white-cell percentages, drawn with vector paths (sharp at any zoom, searchable text). */
function barChart(doc: Doc, f: Fonts, r: SpecimenReport, x: number, y: number, w: number): number {
  const d = r.differential;
  const classes = Object.keys(d.percentages);
  const labelW = 100;
  const chartW = w - labelW - 30;
  const barH = 13;
  const gap = 6;
  // The axis ends at the next 10% above the largest share, so small classes are still visible.
  const max = Math.min(100, Math.max(10, Math.ceil(Math.max(0, ...Object.values(d.percentages)) / 10) * 10));
  doc.font('bold').fontSize(8).fillColor(MUTED).text('SHARE OF WHITE CELLS', x, y);
  const top = y + 14;
  const height = classes.length * (barH + gap);
  for (let t = 0; t <= max; t += max <= 50 ? 10 : 20) {
    const tx = x + labelW + (chartW * t) / max;
    doc
      .moveTo(tx, top - 2)
      .lineTo(tx, top + height)
      .lineWidth(0.4)
      .strokeColor(RULE)
      .stroke();
    doc
      .font('regular')
      .fontSize(7)
      .fillColor(MUTED)
      .text(`${t}%`, tx - 12, top + height + 2, { width: 24, align: 'center' });
  }
  classes.forEach((c, i) => {
    const by = top + i * (barH + gap);
    doc.font('regular').fontSize(8.5).fillColor(INK);
    oneLine(doc, f.text(classLabel(c)), x, by + 2, labelW - 4);
    const bw = (chartW * Math.min(d.percentages[c], max)) / max;
    if (bw > 0)
      doc
        .rect(x + labelW, by, bw, barH)
        .fillColor(BAR)
        .fill();
    doc
      .font('regular')
      .fontSize(7.5)
      .fillColor(INK)
      .text(pct(d.percentages[c], 0), x + labelW + bw + 3, by + 3, { lineBreak: false });
  });
  return top + height + 14;
}

function modelSection(doc: Doc, f: Fonts, r: SpecimenReport): void {
  ensureRoom(doc, 90);
  heading(doc, f, 'Model');
  doc
    .font('regular')
    .fontSize(10)
    .fillColor(INK)
    .text(f.text(`${r.model.name}, version ${r.model.version}`), MARGIN, doc.y);
  doc
    .font('regular')
    .fontSize(8)
    .fillColor(MUTED)
    .text('SHA-256 OF THE MODEL FILE', MARGIN, doc.y + 4);
  doc
    .font('mono')
    .fontSize(8.5)
    .fillColor(INK)
    .text(r.model.sha256, MARGIN, doc.y + 1, { width: width(doc) });
  doc
    .moveDown(0.6)
    .font('regular')
    .fontSize(9)
    .fillColor(MUTED)
    .text(
      'Counts are the model’s labels, with every reviewer’s correction applied. Erythroblasts and platelets ' +
        'are reported per 100 white cells and are not part of the white-cell percentages.',
      MARGIN,
      doc.y,
      { width: width(doc) },
    );
}

function gallerySection(doc: Doc, f: Fonts, r: SpecimenReport, crops: (Buffer | null)[]): void {
  doc.addPage();
  heading(doc, f, `Flagged or corrected cells (${r.gallery.length})`);
  if (r.gallery.length === 0) {
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
  r.gallery.forEach((cell, i) => {
    const col = i % cols;
    if (col === 0 && i > 0) y += imgH + textH + gap;
    if (col === 0 && y + imgH + textH > bottom(doc)) {
      doc.addPage();
      doc.y = doc.page.margins.top - 10;
      heading(doc, f, `Flagged or corrected cells (continued, ${i + 1}–${r.gallery.length})`);
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

/** Every page: the specimen, revision and page number, and the disclaimer (a page may travel alone). */
function footers(doc: Doc, f: Fonts, r: SpecimenReport): void {
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const keep = doc.page.margins.bottom;
    // Writing below the bottom margin would otherwise start a new page.
    doc.page.margins.bottom = 0;
    const y = doc.page.height - MARGIN - FOOTER + 12;
    doc
      .moveTo(MARGIN, y - 4)
      .lineTo(MARGIN + width(doc), y - 4)
      .lineWidth(0.5)
      .strokeColor(RULE)
      .stroke();
    doc
      .font('bold')
      .fontSize(8)
      .fillColor(INK)
      .text(DISCLAIMER, MARGIN, y, { width: width(doc) });
    doc
      .font('regular')
      .fontSize(7.5)
      .fillColor(MUTED)
      .text(
        f.text(
          `Specimen ${r.specimenId} · revision ${r.revision}${r.signedAt && r.reviewer ? '' : ' · DRAFT'} · ` +
            `page ${i - range.start + 1} of ${range.count}`,
        ),
        MARGIN,
        y + 12,
        { width: width(doc), lineBreak: false, ellipsis: true },
      );
    doc.page.margins.bottom = keep;
  }
}
