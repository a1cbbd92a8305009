/** `hematovision adapt`'s clear errors, before any network runs (no ../shared needed). */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { discJpeg } from '../testing/cells.js';
import { runCli } from '../testing/cli.js';

describe('hematovision adapt: clear errors', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'hv-adapt-cli-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const adapt = (data: string, extra: string[] = []) =>
    runCli(['adapt', '--data', data, '--out', join(tmp, 'out'), ...extra]);

  it('refuses a folder with too few images, saying how many it needs and found', async () => {
    const few = join(tmp, 'few', 'nested');
    mkdirSync(few, { recursive: true });
    for (let i = 0; i < 12; i++) writeFileSync(join(few, `c${i}.jpg`), await discJpeg(i));
    const r = await adapt(join(tmp, 'few'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: Adapting needs at least 50 images of the lab; .* holds 12\./);
    expect(existsSync(join(tmp, 'out'))).toBe(false);
  });

  it('refuses a folder without images, and one that does not exist', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'notes.txt'), 'no images here');
    const r = await adapt(empty);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: No images found in .*empty/);
    const gone = await adapt(join(tmp, 'nope'));
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/error: Folder .*nope does not exist\./);
  });

  it('refuses a model without training statistics, saying how to add them', async () => {
    // A model folder whose card carries no activationStats (a copy of the bundled pair, stats left out).
    const model = join(tmp, 'model');
    mkdirSync(model);
    copyFileSync(DEFAULT_MODEL_PATH, join(model, 'model.onnx'));
    const card = JSON.parse(
      (await import('node:fs')).readFileSync(DEFAULT_MODEL_PATH.replace(/\.onnx$/, '.json'), 'utf8'),
    );
    delete card.activationStats;
    writeFileSync(join(model, 'model.json'), JSON.stringify(card));
    const lab = join(tmp, 'lab');
    mkdirSync(lab);
    for (let i = 0; i < 50; i++) writeFileSync(join(lab, `c${i}.jpg`), await discJpeg(i));
    const r = await adapt(lab, ['--model', model]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no training statistics .*hematovision familiarize/);
  });

  it('refuses to write over the parent model', async () => {
    const lab = join(tmp, 'lab2');
    mkdirSync(lab);
    for (let i = 0; i < 50; i++) writeFileSync(join(lab, `c${i}.jpg`), await discJpeg(i));
    const r = await runCli([
      'adapt',
      '--data',
      lab,
      '--model',
      join(tmp, 'model'),
      '--out',
      join(tmp, 'model'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--out is the model’s own folder/);
  });
});
