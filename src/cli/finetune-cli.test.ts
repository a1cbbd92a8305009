/** `hematovision train --fine-tune`, run in-process: clear failures, and a tiny real run end to end. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FOUR_CLASSES, hasPbc, writeLabelledFolder } from '../testing/cells.js';
import { expectCleanFailure, runCli as hv } from '../testing/cli.js';
import { hasShared, skipNote, TFLITE } from '../testing/shared.js';

let tmp: string;
let data: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'hv-ft-cli-'));
  data = join(tmp, 'data');
  await writeLabelledFolder(data, FOUR_CLASSES, 5);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.concurrent('hematovision train --fine-tune: bad input fails cleanly', () => {
  it('TFLite weights that do not exist', async () => {
    const out = join(tmp, 'no-tflite');
    const r = await hv([
      'train',
      '--fine-tune',
      '--data',
      data,
      '--out',
      out,
      '--tflite',
      join(tmp, 'x.tflite'),
    ]);
    expectCleanFailure(r, /needs the MobileNetV2 weights .*x\.tflite does not exist\. Pass --tflite FILE/);
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    [['--epochs', '3'], /--epochs only applies with --fine-tune/],
    [['--resume', '--lr', '0.1'], /--lr, --resume only apply with --fine-tune/],
    [['--fine-tune', '--views', '2'], /--views does not apply to --fine-tune/],
    [['--fine-tune', '--train-blocks', '2', '--train-from-block', '3'], /not both/],
    [['--fine-tune', '--train-from-block', '18'], /--train-from-block must be a number in \[0, 17\]/],
    [['--fine-tune', '--workers', '2'], /--workers must be a number in \[0, 1\]/],
    [['--fine-tune', '--augment', 'heavy'], /--augment must be default or cross-lab, got 'heavy'/],
    [['--fine-tune', '--keep', 'worst'], /--keep must be 'best' or 'last', got 'worst'/],
    [['--keep', 'last'], /--keep only applies with --fine-tune/],
    [['--from', 'models/model.onnx'], /--from only applies with --fine-tune/],
  ])('%j', async (extra, message) => {
    const tflite = extra.includes('--fine-tune') ? ['--tflite', TFLITE] : [];
    const r = await hv(['train', '--data', data, '--out', join(tmp, 'bad'), ...tflite, ...extra]);
    expectCleanFailure(r, message);
  });
});

if (!(hasShared && hasPbc)) skipNote('CLI fine-tuning run', `${TFLITE} and PBC images`);

describe.skipIf(!(hasShared && hasPbc))('hematovision train --fine-tune on 5 PBC cells per class', () => {
  it('--resume without a checkpoint, then a 2-epoch run of the last 2 blocks', async () => {
    const out = join(tmp, 'model');
    const common = ['train', '--fine-tune', '--data', data, '--out', out, '--cache', join(tmp, 'cache')];
    expectCleanFailure(await hv([...common, '--resume']), /Nothing to resume: no checkpoint/);

    const r = await hv([
      ...common,
      '--train-blocks',
      '2',
      '--epochs',
      '2',
      '--batch-size',
      '4',
      '--workers',
      '0',
    ]);
    expect(r.stderr).toMatch(/epoch 2: train loss \d\.\d+ acc/);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Fine-tuning blocks 16–17 and the head/);
    // Too few validation images for the familiarity checks: skipped with a note, the model kept.
    expect(r.stderr).toMatch(/Familiarity checks skipped: .*at least 20 validation images/);
    expect(r.stdout).toMatch(/epoch\s+train loss\s+train acc\s+val NLL/);
    expect(r.stdout).toMatch(/\n2 +\d\.\d{4}/); // the row of epoch 2
    const card = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(card.head.fineTuning).toMatchObject({ fromBlock: 16, maxEpochs: 2, batchSize: 4 });
    expect(card.backbone.name).toMatch(/blocks 16–17/); // fine-tuned, or tried and the pretrained kept
    expect(existsSync(join(out, 'checkpoint', 'checkpoint.bin'))).toBe(true);
  });
});
