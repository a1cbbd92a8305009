/**
 * The PDF report's page furniture: A4 geometry, colours, fonts (DejaVu Sans or the built-in Helvetica), the
 * text helpers every section uses and how labels, times and shares are written.
 */
import { existsSync } from 'node:fs';

export const A4: [number, number] = [595.28, 841.89];
export const MARGIN = 50;
export const FOOTER = 34;
export const INK = '#1b1f24';
export const MUTED = '#4b5563';
export const RULE = '#d3d8df';
export const BAR = '#2b6a94';
export const DRAFT = '#a32020';

/** DejaVu Sans covers any specimen id or note a lab types; Helvetica (built in) is the fallback. */
const DEJAVU = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/dejavu', '/usr/share/fonts/TTF'];

export interface Fonts {
  regular: string;
  bold: string;
  mono: string;
  /** Helvetica and Courier only draw Windows-1252: other characters are replaced so the text stays legible. */
  text(s: string): string;
}

export function fonts(builtIn: boolean): Fonts {
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
export function when(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function pct(x: number, digits = 1): string {
  return `${x.toFixed(digits)}%`;
}

export type Doc = PDFKit.PDFDocument;

export const width = (doc: Doc) => doc.page.width - doc.page.margins.left - doc.page.margins.right;
export const bottom = (doc: Doc) => doc.page.height - doc.page.margins.bottom;

export function heading(doc: Doc, f: Fonts, text: string): void {
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
export function oneLine(
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
export function ensureRoom(doc: Doc, height: number): void {
  if (doc.y + height > bottom(doc)) doc.addPage();
}

export function field(
  doc: Doc,
  f: Fonts,
  name: string,
  value: string,
  x: number,
  y: number,
  w: number,
): void {
  doc.font('regular').fontSize(8).fillColor(MUTED).text(f.text(name.toUpperCase()), x, y, { width: w });
  doc
    .font('regular')
    .fontSize(10)
    .fillColor(INK)
    .text(f.text(value), x, y + 11, { width: w });
}
