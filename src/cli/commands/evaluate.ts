import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { HematoError } from '../../errors.js';
import { Classifier, DEFAULT_MODEL_PATH } from '../../model/classifier.js';
import { evaluateModel, type EvaluationResult } from '../../training/evaluate.js';
import { confusionTable } from '../../training/metrics.js';
import { renderReportHtml } from '../../training/report.js';
import type { Io } from '../io.js';
import { pct, perClassTable, progressBar, table } from '../progress.js';
import { TTA_HELP } from '../options.js';

const collect = (v: string, prev: string[]) => [...prev, v];

interface EvaluateCliOptions {
  data: string[];
  model?: string;
  json?: boolean;
  report?: string;
  tta?: boolean;
  scoreUnknown?: boolean;
}

/** Review, silent errors, unknown classes and the domain check, in a few plain lines. */
function printReview(r: EvaluationResult, io: Io): void {
  const v = r.review;
  const reasons = Object.entries(v.byReason)
    .filter(([, x]) => x > 0)
    .map(([k, x]) => `${k.replace('_', ' ')} ${pct(x)}`)
    .join(', ');
  io.out(
    `\nReview: ${pct(v.rate)} of ${v.n} images flagged${reasons ? ` (${reasons})` : ''}; ` +
      `accuracy of the rest ${pct(v.acceptedAccuracy)}; silent errors (wrong, not flagged) ${pct(v.silentErrorRate)}.`,
  );
  for (const [c, u] of Object.entries(r.unknownClasses))
    io.out(
      `  ${c} (a class the model does not know): ${u.flagged} of ${u.n} flagged (${pct(u.flagged / u.n)}).`,
    );
  if (r.domain) io.out(`Domain: ${r.domain.summary}`);
}

export function registerEvaluate(program: Command, io: Io): void {
  program
    .command('evaluate')
    .description(
      'Score a model on labelled folders: accuracy, precision/recall/F1, confusion matrix, calibration',
    )
    .requiredOption('--data <dir>', 'a labelled dataset folder; repeatable', collect, [])
    .option('--model <file>', 'model.onnx or model.int8.onnx, or their folder (default: the bundled model)')
    .option('--json', 'print one JSON object on stdout')
    .option('--tta', TTA_HELP)
    .option(
      '--score-unknown',
      'also run images in folders of classes the model does not know (every answer on them is wrong) and ' +
        'report how many it flags for review',
    )
    .option(
      '--report <file.html>',
      'also write an HTML report with the confusion matrix and a reliability diagram',
    )
    .action(async (o: EvaluateCliOptions) => {
      // Check where the report goes before a long evaluation, not after it.
      const reportDir = o.report ? dirname(resolve(o.report)) : null;
      if (reportDir && !(existsSync(reportDir) && statSync(reportDir).isDirectory())) {
        throw new HematoError(
          `Cannot write the report ${o.report}: folder ${reportDir} does not exist.`,
          'bad_output',
        );
      }
      const classifier = await Classifier.load(o.model ?? DEFAULT_MODEL_PATH);
      const bar = progressBar('Evaluating', io);
      const r = await evaluateModel(classifier, o.data, {
        tta: o.tta,
        scoreUnknown: o.scoreUnknown,
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.stop();
      await classifier.close();
      if (o.report) {
        writeFileSync(
          o.report,
          await renderReportHtml(r, r.bins, {
            title: `HematoVision evaluation — ${o.data.join(', ')}`,
            model: `${classifier.card.name} ${classifier.card.version}`,
            data: o.data.join(', '),
            imagesPerSecond: r.imagesPerSecond,
            extra: [
              ['No white cell found (counted as errors)', String(r.noCell)],
              ['Unreadable images (not counted)', String(r.unreadable.length)],
              ['Flagged for review', `${pct(r.review.rate)} of ${r.review.n}`],
              ['Accuracy of the answers not flagged', pct(r.review.acceptedAccuracy)],
              ['Silent errors (wrong and not flagged)', pct(r.review.silentErrorRate)],
              ...(r.domain ? [['Domain check', r.domain.summary] as [string, string]] : []),
            ],
            reviewCurve: { points: r.reviewCurve, at: r.review },
          }),
        );
      }
      if (o.json) {
        io.out(
          JSON.stringify({
            accuracy: r.accuracy,
            macroF1: r.macroF1,
            ece: r.ece,
            n: r.n,
            classes: r.classes,
            perClass: r.perClass,
            confusionMatrix: r.confusionMatrix,
            noAnswer: r.noAnswer,
            skipped: r.skipped,
            noCell: r.noCell,
            unreadable: r.unreadable.length,
            tta: Boolean(o.tta),
            imagesPerSecond: r.imagesPerSecond,
            review: r.review,
            domain: r.domain ?? null,
            unknownClasses: r.unknownClasses,
          }),
        );
        return;
      }
      io.out(perClassTable(r.classes, r.perClass));
      io.out('\nConfusion matrix (rows true, columns predicted):');
      // Images with no white cell get their own column, as in the HTML report.
      const { columns, rows } = confusionTable(r);
      io.out(
        table(
          ['', ...columns],
          r.classes.map((c, i) => [c, ...rows[i]]),
        ),
      );
      io.out(
        `\nn ${r.n}  accuracy ${pct(r.accuracy)}  macro-F1 ${pct(r.macroF1)}  ECE ${r.ece.toFixed(3)}  ` +
          `${r.imagesPerSecond.toFixed(0)} images/s${o.tta ? ' (test-time augmentation: 8 views per cell)' : ''}`,
      );
      if (r.noCell) io.out(`${r.noCell} image(s) with no white cell found, counted as errors.`);
      printReview(r, io);
      const unknown = o.scoreUnknown ? [] : Object.entries(r.skipped.unknownClass);
      if (unknown.length)
        io.out(
          `Skipped classes the model does not know: ${unknown.map(([c, n]) => `${c} (${n})`).join(', ')}`,
        );
      if (r.skipped.nonImage) io.out(`Skipped ${r.skipped.nonImage} non-image file(s).`);
      for (const u of r.unreadable) io.err(`unreadable: ${u.path}: ${u.reason}`);
      if (o.report) io.out(`Report: ${o.report}`);
    });
}
