// The thread of a ReportRenderer (render-thread.ts): renders specimen reports so the server's event loop
// never runs pdfkit itself.
import { parentPort } from 'node:worker_threads';
import { answerCalls } from '../threads.js';
import { lowerThreadPriority } from '../thread-priority.js';
import type { RenderRequest } from './render-thread.js';
import { renderSpecimenPdf } from './specimen-pdf.js';

/** Crops arrive as Uint8Arrays (structured clone); pdfkit and sharp want Buffers (same memory, no copy). */
const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

// Before its first call: a report (an export, 0.3–1 s of CPU for a 200-cell gallery) yields the cores to
// other clients' photos and pages; it still has them whenever they are idle.
await lowerThreadPriority();
answerCalls<RenderRequest, Uint8Array>(parentPort!, ({ report, options }) =>
  renderSpecimenPdf(
    { ...report, gallery: report.gallery.map((g) => ({ ...g, crop: asBuffer(g.crop) })) },
    options,
  ),
);
