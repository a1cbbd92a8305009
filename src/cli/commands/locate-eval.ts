import type { Command } from 'commander';
import { DatasetError } from '../../errors.js';
import { decodeImage } from '../../imaging/decode.js';
import { locateCells } from '../../imaging/locate.js';
import { detectionMetrics } from '../../training/detection-metrics.js';
import { readVocSplit, vocBoxes, type VocSplit } from '../../training/voc.js';
import type { Io } from '../io.js';
import { pct, progressBar, table } from '../progress.js';

const SPLITS: VocSplit[] = ['train', 'val', 'trainval', 'test'];

export function registerLocateEval(program: Command, io: Io): void {
  program
    .command('locate-eval')
    .description(
      'Score the white-cell locator on a Pascal VOC dataset (BCCD): precision, recall, mean IoU at IoU ≥ 0.5',
    )
    .requiredOption('--data <dir>', 'VOC root with JPEGImages/, Annotations/ and ImageSets/Main/<split>.txt')
    .option('--split <name>', `one of ${SPLITS.join(', ')}`, 'test')
    .option('--json', 'print {precision, recall, meanIoU, n} as JSON on stdout')
    .action(async (o: { data: string; split: string; json?: boolean }) => {
      if (!SPLITS.includes(o.split as VocSplit)) {
        throw new DatasetError(`Unknown split "${o.split}"; use one of ${SPLITS.join(', ')}.`);
      }
      const samples = readVocSplit(o.data, o.split as VocSplit);
      const bar = progressBar('Locating', io);
      const images = [];
      let ms = 0;
      for (const [i, s] of samples.entries()) {
        const img = await decodeImage(s.imagePath);
        const t = performance.now();
        const detections = locateCells(img);
        ms += performance.now() - t;
        images.push({ detections, truth: vocBoxes(s.annotation, 'WBC') });
        bar.update(i + 1, samples.length);
      }
      bar.stop();
      const m = detectionMetrics(images, 0.5);
      if (o.json) {
        io.out(JSON.stringify({ precision: m.precision, recall: m.recall, meanIoU: m.meanIoU, n: m.n }));
        return;
      }
      io.out(
        table(
          ['split', 'images', 'WBC boxes', 'found', 'false', 'missed', 'precision', 'recall', 'mean IoU'],
          [
            [
              o.split,
              m.n,
              m.truePositives + m.falseNegatives,
              m.truePositives,
              m.falsePositives,
              m.falseNegatives,
              pct(m.precision),
              pct(m.recall),
              m.meanIoU.toFixed(3),
            ],
          ],
        ),
      );
      io.out(`\nMatched one-to-one at IoU ≥ 0.5, best score first. ${(ms / m.n).toFixed(1)} ms per image.`);
    });
}
