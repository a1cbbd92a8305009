import Fastify from 'fastify';
import { sharedSchemas } from '../../api/index.js';
import { describe, expect, it } from 'vitest';
import { renderSpecimenPdf } from '../../report/specimen-pdf.js';
import { sampleReport } from '../../testing/specimen-report.js';
import { reportFileName, specimenReportRoutes } from './specimen-report.js';

describe('specimen report route', () => {
  it('sends the PDF as an attachment named after the specimen and revision, and 404 for an unknown one', async () => {
    const report = await sampleReport({ gallery: 2 });
    const app = Fastify();
    for (const schema of sharedSchemas) app.addSchema(schema);
    await app.register(specimenReportRoutes, {
      prefix: '/api/v1',
      load: (id) => (id === report.specimenId ? { report } : null),
      render: (r) => renderSpecimenPdf(r),
    });
    const res = await app.inject({ method: 'GET', url: `/api/v1/specimens/${report.specimenId}/report.pdf` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/pdf');
    expect(res.headers['content-disposition']).toBe(
      'attachment; filename="hematovision-SPEC-2026-0042-r3.pdf"',
    );
    expect(res.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
    const missing = await app.inject({ method: 'GET', url: '/api/v1/specimens/nope/report.pdf' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toBe('not_found');
    await app.close();
  });

  it('names a draft as such and keeps odd characters out of the file name', () => {
    expect(reportFileName({ specimenId: 'a/b "c" ü', revision: 1 })).toBe('hematovision-a_b_c_-r1-draft.pdf');
    expect(
      reportFileName({ specimenId: '', revision: 2, reviewer: 'X', signedAt: '2026-01-01T00:00:00Z' }),
    ).toBe('hematovision-specimen-r2.pdf');
  });
});
