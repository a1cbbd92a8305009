/**
 * The PDF report of one specimen: header and sign-off, the differential as a table and a bar chart, the gallery
 * of flagged or corrected cells with their crops, and the model that produced the counts. Pure: the input in,
 * the PDF's bytes out (nothing read from the case store or written to disk).
 */
import PDFDocument from 'pdfkit';
import type { Differential } from '../model/differential.js';
import { gallerySection, prepareCrop, type GalleryCell } from './gallery.js';
import {
  A4,
  BAR,
  classLabel,
  DRAFT,
  ensureRoom,
  field,
  FOOTER,
  fonts,
  heading,
  INK,
  MARGIN,
  MUTED,
  oneLine,
  pct,
  RULE,
  when,
  width,
  type Doc,
  type Fonts,
} from './pdf-layout.js';

export type { GalleryCell } from './gallery.js';

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
    gallerySection(doc, f, report.gallery, crops);
    footers(doc, f, report);
    doc.end();
  } catch (err) {
    doc.end();
    throw err;
  }
  return done;
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
