import { describe, expect, it } from 'vitest';
import { evaluatePredictions, NO_ANSWER, reliabilityBins } from './metrics.js';
import { confusionMatrixSpec, formatPercent, renderReportHtml } from './report.js';

const classes = ['EOSINOPHIL', 'LYMPHOCYTE', 'MONOCYTE', 'NEUTROPHIL'];
const truth = [0, 0, 1, 1, 2, 2, 3, 3, 3];
// prettier-ignore
const probs = new Float32Array([
  0.7, 0.1, 0.1, 0.1,
  0.3, 0.2, 0.1, 0.4,
  0.05, 0.9, 0.03, 0.02,
  0.1, 0.6, 0.2, 0.1,
  0.2, 0.1, 0.55, 0.15,
  0.25, 0.25, 0.3, 0.2,
  0.1, 0.1, 0.1, 0.7,
  0.02, 0.02, 0.01, 0.95,
  0.5, 0.1, 0.1, 0.3,
]);

describe('renderReportHtml', () => {
  it('renders a self-contained page with the summary, the table and two SVG charts', async () => {
    const metrics = evaluatePredictions(truth, probs, classes);
    const bins = reliabilityBins(truth, probs, classes.length);
    const html = await renderReportHtml(metrics, bins, {
      title: 'Blood cells <test> & report',
      model: 'hematovision-test 0.1',
      data: 'nine hand-made rows',
      imagesPerSecond: 42.25,
    });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg[\s>]/g)).toHaveLength(2);
    expect(html.match(/<\/svg>/g)).toHaveLength(2);
    for (const c of classes) expect(html).toContain(c);
    // 7 of 9 right (rows 1 and 8 are wrong).
    expect(metrics.accuracy).toBeCloseTo(7 / 9, 12);
    expect(html).toContain(formatPercent(metrics.accuracy));
    expect(formatPercent(metrics.accuracy)).toBe('77.8%');
    expect(html).toContain(formatPercent(metrics.macroF1));
    expect(html).toContain('42.3 images/s');
    expect(html).toContain('Blood cells &#60;test&#62; &#38; report');
    // Offline: nothing fetched from anywhere.
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    // The confusion matrix cell counts are drawn as text.
    expect(html).toContain('Confusion matrix');
    expect(html).toContain('Reliability diagram');
  });

  it("draws accuracy against review rate, with the model's own point, when given the curve", async () => {
    const metrics = evaluatePredictions(truth, probs, classes);
    const html = await renderReportHtml(metrics, reliabilityBins(truth, probs, 4), {
      title: 't',
      model: 'm',
      data: 'd',
      reviewCurve: {
        points: [
          { threshold: 0, reviewRate: 0, acceptedAccuracy: 0.7 },
          { threshold: 0.5, reviewRate: 0.3, acceptedAccuracy: 0.9 },
        ],
        at: { rate: 0.3, acceptedAccuracy: 0.9 },
      },
    });
    expect(html.match(/<svg[\s>]/g)).toHaveLength(3);
    expect(html).toContain('Accuracy of accepted answers against review rate');
    expect(html).toContain('Share of images flagged for review');
  });

  it('leaves throughput out when unknown', async () => {
    const metrics = evaluatePredictions(truth, probs, classes);
    const html = await renderReportHtml(metrics, reliabilityBins(truth, probs, 4), {
      title: 't',
      model: 'm',
      data: 'd',
    });
    expect(html).not.toContain('Throughput');
    expect(html.match(/<svg[\s>]/g)).toHaveLength(2);
  });

  it('adds a "no answer" column when some images got no answer, and row shares count them', () => {
    const unanswered = truth.map((_, i) => i === 2);
    const m = evaluatePredictions(truth, probs, classes, { unanswered });
    const values = (
      confusionMatrixSpec(m).data as { values: { true: string; predicted: string; share: number }[] }
    ).values;
    const lymphocyte = values.filter((v) => v.true === 'LYMPHOCYTE');
    expect(lymphocyte.map((v) => v.predicted)).toEqual([...classes, NO_ANSWER]);
    // Row LYMPHOCYTE: one unanswered, one predicted lymphocyte (row 3 of probs).
    expect(lymphocyte.find((v) => v.predicted === NO_ANSWER)!.share).toBe(0.5);
    expect(lymphocyte.find((v) => v.predicted === 'LYMPHOCYTE')!.share).toBe(0.5);
    const none = confusionMatrixSpec(evaluatePredictions(truth, probs, classes)).data as {
      values: { predicted: string }[];
    };
    expect(none.values.some((v) => v.predicted === NO_ANSWER)).toBe(false);
  });
});
