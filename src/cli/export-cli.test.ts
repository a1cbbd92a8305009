/** `hematovision export --int8`, run in-process: clear failures, and a small real run on the bundled model. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier } from '../model/classifier.js';
import type { ModelCard } from '../model/types.js';
import { FOUR_CLASSES, writeLabelledFolder } from '../testing/cells.js';
import { expectCleanFailure, runCli as hv } from '../testing/cli.js';

let tmp: string;
let data: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'hv-export-'));
  data = join(tmp, 'data');
  // PBC cells when ../shared is there, synthetic ones otherwise: either way the locator finds a cell.
  await writeLabelledFolder(data, FOUR_CLASSES, 2);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('hematovision export: bad input fails cleanly', () => {
  it('without --int8', async () => {
    const r = await hv(['export', '--data', data, '--out', join(tmp, 'x')]);
    expectCleanFailure(r, /--int8/);
  });

  it('a calibration folder that does not exist', async () => {
    const r = await hv(['export', '--int8', '--data', join(tmp, 'nope'), '--out', join(tmp, 'x')]);
    expectCleanFailure(r, /Calibration folder not found/);
  });

  it('a folder without a single image', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'notes.txt'), 'no images here');
    const r = await hv(['export', '--int8', '--data', empty, '--out', join(tmp, 'x')]);
    expectCleanFailure(r, /No usable calibration image/);
    expect(existsSync(join(tmp, 'x', 'model.int8.onnx'))).toBe(false);
  });

  it('a bad --images', async () => {
    const r = await hv(['export', '--int8', '--data', data, '--out', join(tmp, 'x'), '--images', '0']);
    expectCleanFailure(r, /--images must be a whole number/);
  });
});

describe('hematovision export --int8', () => {
  it('writes model.int8.onnx with its card, which --model then runs', async () => {
    const out = join(tmp, 'int8');
    const r = await hv(['export', '--int8', '--data', data, '--out', out, '--images', '6']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/52 Conv, 10 Add quantized/);
    const bytes = readFileSync(join(out, 'model.int8.onnx'));
    const card = JSON.parse(readFileSync(join(out, 'model.int8.json'), 'utf8')) as ModelCard;
    expect(card.modelSha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(card.quantization?.calibration).toMatchObject({ method: 'minmax', images: 6 });
    expect(card.name).toBe('hematovision-wbc8-int8');
    expect(r.stderr).toMatch(/Only 6 calibration images/);
    expect(bytes.byteLength).toBeLessThan(5e6);
    const c = await Classifier.load(out);
    const res = await c.run(new Float32Array(3 * 224 * 224), 1);
    expect(res.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    await c.close();
  }, 120_000);
});
