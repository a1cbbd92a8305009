/**
 * Specimen reports rendered in a worker thread (issue 15: PDF export off the event loop). A 200-cell gallery
 * keeps the caller's event loop busy for 0.3–0.7 s when rendered in place (pdfkit's layout, font subsetting
 * and deflate are JavaScript); here the caller only copies the report over and the PDF back.
 *
 * One thread (LazyWorker: started by the first report, replaced after it died), at low priority on Linux
 * (thread-priority.ts).
 */
import { HematoError } from '../errors.js';
import { LazyWorker, startWorker } from '../threads.js';
import type { GalleryCell, RenderOptions, SpecimenReport } from './specimen-pdf.js';

/** A report as it crosses to the thread: structured clone turns Buffers into Uint8Arrays. */
export interface RenderRequest {
  report: Omit<SpecimenReport, 'gallery'> & { gallery: (Omit<GalleryCell, 'crop'> & { crop: Uint8Array })[] };
  options: RenderOptions;
}

export class ReportRenderer {
  private readonly thread = new LazyWorker<RenderRequest, Uint8Array>(
    () => startWorker(import.meta.url, 'render-worker', null),
    {
      failed: (message) => new HematoError(`The report could not be made: ${message}`, 'report_failed', 500),
      died: (reason) => new HematoError(`The report thread failed: ${reason}`, 'report_failed', 500),
      closed: () => new HematoError('The report renderer was closed.', 'closed', 503),
    },
  );

  /** renderSpecimenPdf's bytes, made in the thread. */
  async render(report: SpecimenReport, options: RenderOptions = {}): Promise<Buffer> {
    const request: RenderRequest = {
      // Each crop as a compact copy: a Buffer that is a slice of a larger one (a pooled or read buffer) would
      // otherwise carry its whole backing memory across.
      report: { ...report, gallery: report.gallery.map((g) => ({ ...g, crop: compact(g.crop) })) },
      options,
    };
    const pdf = await this.thread.call(request);
    return Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength);
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}

function compact(bytes: Buffer): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : new Uint8Array(bytes);
}
