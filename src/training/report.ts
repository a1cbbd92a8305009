/**
 * A self-contained HTML evaluation report: summary, per-class table, confusion matrix and reliability
 * diagram. The two charts are Vega-Lite specs rendered to inline SVG in Node (no canvas, no scripts),
 * so the file opens offline and can be attached to a model release as is.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { confusionTable, type Metrics, type ReliabilityBin } from './metrics.js';

export interface ReportInfo {
  title: string;
  /** Model name / version / file, shown as given. */
  model: string;
  /** Which data was evaluated, shown as given. */
  data: string;
  /** Throughput measured during the evaluation; omitted from the summary when null or undefined. */
  imagesPerSecond?: number | null;
  /** Extra summary rows, e.g. images with no answer, shown as given. */
  extra?: [string, string][];
  /** Accepted accuracy against review rate (training/review.ts), with the model's own operating point. */
  reviewCurve?: {
    points: { threshold: number; reviewRate: number; acceptedAccuracy: number }[];
    at: { rate: number; acceptedAccuracy: number };
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatPercent(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function confusionMatrixSpec(metrics: Metrics): TopLevelSpec {
  const { classes } = metrics;
  const { columns, rows } = confusionTable(metrics);
  const cells = classes.flatMap((t, i) => {
    const row = rows[i];
    const rowTotal = row.reduce((a, b) => a + b, 0);
    return columns.map((p, j) => ({
      true: t,
      predicted: p,
      count: row[j],
      // Row share (recall for the diagonal, unanswered samples included) so rare classes read as well as common ones.
      share: rowTotal > 0 ? row[j] / rowTotal : 0,
    }));
  });
  const size = Math.max(40, Math.min(80, 320 / classes.length));
  return {
    title: 'Confusion matrix (colour: share of the true class)',
    width: size * columns.length,
    height: size * classes.length,
    data: { values: cells },
    encoding: {
      x: {
        field: 'predicted',
        type: 'nominal',
        sort: columns,
        title: 'Predicted',
        axis: { labelAngle: -30 },
      },
      y: { field: 'true', type: 'nominal', sort: classes, title: 'True' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'share',
            type: 'quantitative',
            scale: { scheme: 'blues', domain: [0, 1] },
            title: 'Share',
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 13 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
        },
      },
    ],
    config: { view: { stroke: null } },
  };
}

export function reliabilitySpec(bins: ReliabilityBin[], ece: number): TopLevelSpec {
  const used = bins.filter((b) => b.count > 0);
  const unit = { type: 'quantitative' as const, scale: { domain: [0, 1] } };
  return {
    title: `Reliability diagram (ECE ${formatPercent(ece)})`,
    width: 320,
    height: 320,
    layer: [
      {
        data: { values: used },
        mark: { type: 'bar', color: '#9ecae1', stroke: '#3182bd', strokeWidth: 0.5 },
        encoding: {
          x: { field: 'lo', ...unit, title: 'Top-1 confidence' },
          x2: { field: 'hi' },
          y: { field: 'accuracy', ...unit, title: 'Accuracy' },
          y2: { datum: 0 },
        },
      },
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', color: '#888', strokeDash: [5, 4] },
        encoding: { x: { field: 'x', ...unit }, y: { field: 'y', ...unit } },
      },
      {
        // Mean confidence against accuracy: on the diagonal when calibrated.
        data: { values: used },
        mark: { type: 'point', filled: true, color: '#d6604d' },
        encoding: {
          x: { field: 'confidence', ...unit },
          y: { field: 'accuracy', ...unit },
          size: { field: 'count', type: 'quantitative', title: 'Samples' },
        },
      },
    ],
  };
}

/** What reviewing more buys: accuracy of the answers accepted without review, against the review rate. */
export function reviewCurveSpec(curve: NonNullable<ReportInfo['reviewCurve']>): TopLevelSpec {
  const unit = { type: 'quantitative' as const, scale: { domain: [0, 1] } };
  const lowest = Math.min(...curve.points.map((p) => p.acceptedAccuracy), curve.at.acceptedAccuracy);
  const accuracy = {
    type: 'quantitative' as const,
    scale: { domain: [Math.max(0, Math.floor(lowest * 10) / 10), 1] },
  };
  return {
    title: 'Accuracy of accepted answers against review rate',
    width: 320,
    height: 320,
    layer: [
      {
        data: { values: curve.points },
        mark: { type: 'line', color: '#3182bd', point: { size: 12 } },
        encoding: {
          x: { field: 'reviewRate', ...unit, title: 'Share of images flagged for review' },
          y: { field: 'acceptedAccuracy', ...accuracy, title: 'Accuracy of the rest' },
        },
      },
      {
        // The model's own thresholds.
        data: { values: [{ reviewRate: curve.at.rate, acceptedAccuracy: curve.at.acceptedAccuracy }] },
        mark: { type: 'point', filled: true, color: '#d6604d', size: 120 },
        encoding: { x: { field: 'reviewRate', ...unit }, y: { field: 'acceptedAccuracy', ...accuracy } },
      },
    ],
  };
}

const CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 2rem auto;
  max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .3rem .8rem; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.summary td { text-align: left; }
.summary td:first-child { color: #555; }
figure { margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 2rem; align-items: flex-start; }
footer { margin-top: 2rem; color: #777; font-size: .85rem; }
`;

/**
 * The report as one HTML string (async because Vega renders asynchronously). `bins` are the
 * reliability bins of the same predictions (see reliabilityBins in metrics.ts).
 */
export async function renderReportHtml(
  metrics: Metrics,
  bins: ReliabilityBin[],
  info: ReportInfo,
): Promise<string> {
  const curve = info.reviewCurve && info.reviewCurve.points.length > 0 ? info.reviewCurve : undefined;
  const [confusionSvg, reliabilitySvg, reviewSvg] = await Promise.all([
    toSvg(confusionMatrixSpec(metrics)),
    toSvg(reliabilitySpec(bins, metrics.ece)),
    curve ? toSvg(reviewCurveSpec(curve)) : Promise.resolve(''),
  ]);
  const summary: [string, string][] = [
    ['Model', info.model],
    ['Data', info.data],
    ['Images', String(metrics.n)],
    ['Accuracy', formatPercent(metrics.accuracy)],
    ['Macro-F1', formatPercent(metrics.macroF1)],
    ['Expected calibration error (15 bins)', formatPercent(metrics.ece)],
  ];
  if (info.imagesPerSecond !== undefined && info.imagesPerSecond !== null) {
    summary.push(['Throughput', `${info.imagesPerSecond.toFixed(1)} images/s`]);
  }
  summary.push(...(info.extra ?? []));
  const classRows = metrics.classes
    .map((c) => {
      const m = metrics.perClass[c];
      return (
        `<tr><td>${escapeHtml(c)}</td><td>${formatPercent(m.precision)}</td><td>${formatPercent(m.recall)}</td>` +
        `<td>${formatPercent(m.f1)}</td><td>${m.support}</td></tr>`
      );
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(info.title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(info.title)}</h1>
<h2>Summary</h2>
<table class="summary">
${summary.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join('\n')}
</table>
<h2>Per class</h2>
<table>
<tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th></tr>
${classRows}
</table>
<h2>Charts</h2>
<div class="charts">
<figure>${confusionSvg}</figure>
<figure>${reliabilitySvg}</figure>
${reviewSvg ? `<figure>${reviewSvg}</figure>` : ''}
</div>
<footer>Rows of the confusion matrix are true classes, columns predicted ones. Macro-F1 averages the classes
present in the data or predicted at least once. A class never predicted has precision 0. The review curve moves
the confidence threshold and keeps the other review reasons; the red point is the model's own threshold.</footer>
</body>
</html>
`;
}
