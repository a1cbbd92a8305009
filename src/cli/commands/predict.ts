import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { Option, type Command } from 'commander';
import { DatasetError, HematoError } from '../../errors.js';
import { DEFAULT_MODEL_PATH } from '../../model/classifier.js';
import { checkDomain } from '../../model/domain.js';
import { pipeline, type ImageAnalysis } from '../../pipeline.js';
import type { Io } from '../io.js';
import { pct, progressBar } from '../progress.js';
import { TTA_HELP } from '../options.js';
import { predictRemote } from './predict-remote.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.tif', '.tiff', '.webp', '.bmp']);

/** Files named, and image files inside folders named (recursively, sorted). */
function expand(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new DatasetError(`No such file or folder: ${p}`);
    }
    if (st.isDirectory()) {
      const walk = (dir: string) => {
        for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
          a.name.localeCompare(b.name),
        )) {
          if (e.name.startsWith('.')) continue;
          const f = join(dir, e.name);
          if (e.isDirectory()) walk(f);
          else if (IMAGE_EXT.has(extname(e.name).toLowerCase())) out.push(f);
        }
      };
      walk(p);
    } else out.push(p);
  }
  if (out.length === 0) throw new DatasetError(`No images found in ${paths.join(', ')}.`);
  return out;
}

type Row = { file: string } & (Omit<ImageAnalysis, 'heatmapPng'> | { error: string; message: string });

export function registerPredict(program: Command, io: Io): void {
  program
    .command('predict')
    .description(
      'Classify images (files or folders): label, confidence, every class probability, needs-review flag',
    )
    .argument('<paths...>', 'image files or folders')
    .option('--model <file>', 'model.onnx or model.int8.onnx, or their folder (default: the bundled model)')
    .addOption(new Option('--json', 'print a JSON array on stdout').conflicts('csv'))
    .option('--csv', 'print CSV on stdout')
    .option('--tta', TTA_HELP)
    .addOption(
      new Option(
        '--server <url>',
        'send the images to a running HematoVision server, which analyses and stores them (with accounts ' +
          'on, an API token in $HEMATOVISION_TOKEN)',
      ).conflicts(['csv', 'model']),
    )
    .option('--specimen <id>', 'with --server: add the images to this specimen and print its differential')
    .action(
      async (
        paths: string[],
        o: {
          model?: string;
          json?: boolean;
          csv?: boolean;
          tta?: boolean;
          server?: string;
          specimen?: string;
        },
      ) => {
        const files = expand(paths);
        if (o.specimen !== undefined && o.server === undefined)
          throw new HematoError(
            '--specimen needs --server: specimens live on a HematoVision server (hematovision predict --server http://localhost:3000 --specimen ID …).',
            'bad_option',
          );
        if (o.server !== undefined) return predictRemote(files, { ...o, server: o.server }, io);
        const vision = await pipeline({ model: o.model ?? DEFAULT_MODEL_PATH });
        const classes = vision.card.classes;
        const rows: Row[] = [];
        const bar = progressBar('Predicting', io);
        for (const [i, file] of files.entries()) {
          try {
            const { heatmapPng: _h, ...r } = await vision.analyze(file, { tta: o.tta });
            rows.push({ file, ...r });
          } catch (e) {
            if (!(e instanceof HematoError)) throw e;
            // One bad image never stops the batch.
            rows.push({ file, error: e.code, message: e.message });
          }
          bar.update(i + 1, files.length);
        }
        bar.stop();
        await vision.close();
        const failed = rows.filter((r) => 'error' in r).length;
        if (o.json) io.out(JSON.stringify(rows, null, 2));
        else if (o.csv) {
          const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
          io.out(
            [
              'file',
              'label',
              'confidence',
              'needsReview',
              'reviewReasons',
              'cells',
              ...classes,
              'error',
            ].join(','),
          );
          for (const r of rows) {
            if ('error' in r)
              io.out([q(r.file), '', '', '', '', '', ...classes.map(() => ''), q(r.message)].join(','));
            else
              io.out(
                [
                  q(r.file),
                  r.label ?? '',
                  r.confidence.toFixed(4),
                  r.needsReview,
                  r.reviewReasons.join(' '),
                  r.cells.length,
                  ...classes.map((c) => (r.probabilities[c] ?? 0).toFixed(4)),
                  '',
                ].join(','),
              );
          }
        } else {
          for (const r of rows) {
            if ('error' in r)
              continue; // said once, on stderr, below
            else if (r.label === null) io.out(`${r.file}: ${r.message ?? 'no answer'} (needs review)`);
            else {
              const probs = classes.map((c) => `${c} ${pct(r.probabilities[c])}`).join(', ');
              const cells =
                r.cells.length > 1
                  ? ` [${r.cells.length} cells: ${r.cells.map((c) => c.label).join(', ')}]`
                  : '';
              const review = r.needsReview
                ? ` (needs review: ${r.reviewReasons.join(', ').replaceAll('_', ' ')})`
                : '';
              io.out(`${r.file}: ${r.label} ${pct(r.confidence)}${review} — ${probs}${cells}`);
            }
          }
        }
        // A batch says whether it looks like the labs the model learned from; on stderr with --json or --csv,
        // so their stdout keeps its shape.
        const domain =
          files.length > 1 ? checkDomain(rows.flatMap((r) => ('error' in r ? [] : [r]))) : undefined;
        if (domain) {
          const line = `\nDomain: ${domain.summary}`;
          if (o.json || o.csv) io.err(line);
          else io.out(line);
        }
        if (failed > 0) {
          for (const r of rows) if ('error' in r) io.err(`${r.file}: ${r.message}`);
          io.err(`${failed} of ${rows.length} image(s) could not be read.`);
          io.exitCode = 1;
        }
      },
    );
}
