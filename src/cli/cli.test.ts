/**
 * The `hematovision` command: bad input must end in one clear line on stderr, a non-zero exit and no stack
 * trace; machine-readable output (--json, --csv) must stay parseable. Run in-process through the same
 * program bin/hematovision.js runs; a few smoke tests at the end spawn the real command.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FOUR_CLASSES, discJpeg, hasPbc, PBC, truncatedJpeg, writeLabelledFolder } from '../testing/cells.js';
import { expectCleanFailure, runCli, spawnCli, type CliRun } from '../testing/cli.js';
import type { ModelCard } from '../model/types.js';
import { REPO_ROOT } from '../testing/shared.js';

const MODEL_DIR = join(REPO_ROOT, 'models');
const hasModel = existsSync(join(MODEL_DIR, 'model.onnx')) && existsSync(join(MODEL_DIR, 'model.json'));

if (!hasPbc) console.warn(`[cli] ${PBC} absent: using synthetic disc images instead of PBC cells`);
if (!hasModel)
  console.warn(`[cli] SKIPPED the tests that run a model: ${MODEL_DIR}/model.onnx + model.json absent`);

// Two commands at a time (the tests run concurrently): the machine has two cores and other users.
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(f: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await f();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** `hematovision …` in-process; never rejects on errors meant for people, so they can be asserted on. */
function hv(args: string[]): Promise<CliRun> {
  return slot(() => runCli(args));
}

/** `node bin/hematovision.js …`, a real child process from the repository root. */
function spawned(args: string[]): Promise<CliRun> {
  return slot(() => spawnCli(args, 60_000));
}

let tmp: string;
let labelled: string; // 4 known classes ×3, a folder of a class no model knows (smudge), a .txt, a corrupt JPEG
let batch: string; // 3 good images + 1 corrupt JPEG, no class folders
const goodInBatch: string[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'hv-cli-'));
  labelled = join(tmp, 'labelled');
  const images = await writeLabelledFolder(labelled, FOUR_CLASSES, 3);
  await writeLabelledFolder(labelled, ['smudge'], 2);
  writeFileSync(join(labelled, 'neutrophil', 'notes.txt'), 'not an image\n');
  writeFileSync(join(labelled, 'eosinophil', 'zz-corrupt.jpg'), truncatedJpeg(images[0]));

  batch = join(tmp, 'batch');
  mkdirSync(batch);
  for (const src of [images[0], images[3], images[6]]) {
    const dest = join(batch, `good-${goodInBatch.length}.jpg`);
    copyFileSync(src, dest);
    goodInBatch.push(dest);
  }
  writeFileSync(join(batch, 'bad.jpg'), truncatedJpeg(images[0]));

  mkdirSync(join(tmp, 'empty'));
  mkdirSync(join(tmp, 'flat'));
  writeFileSync(join(tmp, 'flat', 'cell.jpg'), await discJpeg(1));
  writeFileSync(join(tmp, 'notes.txt'), 'hello\n');
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.concurrent('hematovision: help and usage errors', () => {
  it('--help lists every command on stdout, exit 0', async () => {
    const r = await hv(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: hematovision /);
    for (const c of ['import-backbone', 'train', 'familiarize', 'evaluate', 'predict', 'locate-eval'])
      expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it("a missing argument: the error and the command's help on stderr, exit 1", async () => {
    const r = await hv(['predict']);
    expectCleanFailure(r, /^error: missing required argument 'paths'\n/);
    expect(r.stderr).toMatch(/Usage: hematovision predict /);
    expect(r.stdout).toBe('');
  });

  it('an unknown option, exit 1', async () => {
    expectCleanFailure(await hv(['evaluate', '--bogus']), /^error: unknown option '--bogus'/);
  });

  it('--version prints the package version, exit 0', async () => {
    const r = await hv(['--version']);
    expect(r.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('refuses --json with --csv instead of silently picking one', async () => {
    expectCleanFailure(
      await hv(['predict', '--json', '--csv', 'x.jpg']),
      /cannot be used with option '--csv'/,
    );
  });

  it("help is portable: no path of this machine in any command's help", async () => {
    for (const c of ['predict', 'evaluate', 'train', 'familiarize', 'import-backbone', 'locate-eval']) {
      const r = await hv([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain(REPO_ROOT);
      expect(r.stdout).not.toMatch(/\(default: "\//);
    }
  });
});

describe.concurrent('hematovision: bad data folders', () => {
  it('no --data at all', async () => {
    expectCleanFailure(await hv(['evaluate']), /No dataset folder given/);
  });

  it('a --data folder that does not exist', async () => {
    const missing = join(tmp, 'no-such-folder');
    expectCleanFailure(await hv(['train', '--data', missing, '--out', join(tmp, 'out')]), /does not exist/);
    expect(existsSync(join(tmp, 'out'))).toBe(false);
  });

  it.skipIf(!hasModel)('evaluate on an empty folder', async () => {
    expectCleanFailure(await hv(['evaluate', '--data', join(tmp, 'empty')]), /no class sub-folders/);
  });

  it.skipIf(!hasModel)('evaluate on a folder of images without class sub-folders', async () => {
    const r = await hv(['evaluate', '--data', join(tmp, 'flat')]);
    expectCleanFailure(r, /no class sub-folders; expected one folder per class/);
  });

  it('an unknown class in --classes names the classes that exist', async () => {
    const r = await hv([
      'train',
      '--data',
      labelled,
      '--classes',
      'eosinophil,blast',
      '--out',
      join(tmp, 'out'),
    ]);
    expectCleanFailure(r, /Unknown class blast/);
    for (const c of ['smudge', ...FOUR_CLASSES]) expect(r.stderr).toContain(c);
  });
});

describe.concurrent('hematovision: bad options', () => {
  it.each([
    [['--views', 'abc'], /--views must be a number/],
    [['--val-fraction', '2'], /--val-fraction must be a number in \[0.05, 0.5\], got '2'/],
    [['--crop', 'middle'], /--crop must be 'cell' or 'whole'/],
  ])('train %j', async (extra, message) => {
    const out = join(tmp, 'out-bad-option');
    expectCleanFailure(await hv(['train', '--data', labelled, '--out', out, ...extra]), message);
    expect(existsSync(out)).toBe(false);
  });

  it.skipIf(!hasModel)(
    'evaluate --report into a folder that does not exist fails before evaluating',
    async () => {
      const r = await hv(['evaluate', '--data', labelled, '--report', join(tmp, 'no-dir', 'r.html')]);
      expectCleanFailure(r, /Cannot write the report .*does not exist/);
    },
  );
});

describe.concurrent('hematovision: bad model files', () => {
  it('predict --model nope.onnx', async () => {
    expectCleanFailure(
      await hv(['predict', '--model', 'nope.onnx', goodInBatch[0] ?? 'x.jpg']),
      /Model file not found/,
    );
  });

  it('evaluate --model nope.onnx', async () => {
    expectCleanFailure(
      await hv(['evaluate', '--data', labelled, '--model', 'nope.onnx']),
      /Model file not found/,
    );
  });

  it.skipIf(!hasModel)('a model whose bytes no longer match its card (sha256) is refused', async () => {
    const dir = join(tmp, 'tampered');
    mkdirSync(dir);
    copyFileSync(join(MODEL_DIR, 'model.json'), join(dir, 'model.json'));
    const bytes = readFileSync(join(MODEL_DIR, 'model.onnx'));
    bytes[bytes.length >> 1] ^= 0x01;
    writeFileSync(join(dir, 'model.onnx'), bytes);
    const r = await hv(['predict', '--model', join(dir, 'model.onnx'), goodInBatch[0]]);
    expectCleanFailure(r, /does not match its card \(sha256 .*Refusing to run it/);
    expect(r.stdout).toBe('');
  });

  it.skipIf(!hasModel)('a model.json that is not JSON', async () => {
    const dir = join(tmp, 'bad-card');
    mkdirSync(dir);
    copyFileSync(join(MODEL_DIR, 'model.onnx'), join(dir, 'model.onnx'));
    writeFileSync(join(dir, 'model.json'), '{ "classes": [ this is not JSON');
    const r = await hv(['evaluate', '--data', labelled, '--model', join(dir, 'model.onnx')]);
    expectCleanFailure(r, /model\.json is not valid JSON/);
  });

  it.skipIf(!hasModel)('--model may name the model folder', async () => {
    const r = await hv(['predict', '--model', MODEL_DIR, '--json', goodInBatch[0]]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(1);
  });
});

describe.skipIf(!hasModel)('hematovision predict', { concurrent: true }, () => {
  it('a file that is not an image: reported, exit 1, no stack trace', async () => {
    const notes = join(tmp, 'notes.txt');
    const r = await hv(['predict', notes]);
    expectCleanFailure(r, /1 of 1 image\(s\) could not be read/);
    // Said once, on stderr, with the summary line; stdout holds results only.
    const said = r.stderr.split(notes).length - 1;
    expect(said).toBe(1);
    expect(r.stderr).toMatch(/not a JPEG, PNG, TIFF, WebP or BMP image/);
    expect(r.stdout).not.toContain(notes);
  });

  it('a path that does not exist', async () => {
    expectCleanFailure(await hv(['predict', join(tmp, 'nope.jpg')]), /No such file or folder/);
  });

  it('a folder with a corrupt JPEG among good ones: the good ones are still predicted', async () => {
    const r = await hv(['predict', '--json', batch]);
    expectCleanFailure(r, /1 of 4 image\(s\) could not be read/);
    const rows = JSON.parse(r.stdout) as {
      file: string;
      label?: string | null;
      error?: string;
      message?: string;
    }[];
    expect(rows).toHaveLength(4);
    const bad = rows.find((row) => row.file.endsWith('bad.jpg'));
    expect(bad?.error).toBe('corrupt_image');
    expect(bad?.message).toMatch(/corrupt or truncated/);
    for (const f of goodInBatch) {
      const row = rows.find((x) => x.file === f);
      expect(row?.error).toBeUndefined();
      expect(row && 'label' in row).toBe(true);
    }
  });

  it('--json prints one JSON array of {file, label, confidence, probabilities, needsReview, reviewReasons, cells}', async () => {
    const r = await hv(['predict', '--json', ...goodInBatch]);
    expect(r.code, r.stderr).toBe(0);
    const card = JSON.parse(readFileSync(join(MODEL_DIR, 'model.json'), 'utf8')) as { classes: string[] };
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(rows.map((x) => x.file)).toEqual(goodInBatch);
    for (const row of rows) {
      for (const key of [
        'file',
        'label',
        'confidence',
        'probabilities',
        'needsReview',
        'reviewReasons',
        'cells',
      ]) {
        expect(row).toHaveProperty(key);
      }
      expect(typeof row.needsReview).toBe('boolean');
      // Flagged exactly when there is a reason, and the image carries every reason of its cells.
      const reasons = row.reviewReasons as string[];
      expect(row.needsReview).toBe(reasons.length > 0);
      for (const c of row.cells as { reviewReasons: string[] }[])
        for (const x of c.reviewReasons) expect(reasons).toContain(x);
      expect(Array.isArray(row.cells)).toBe(true);
      if (row.label === null) continue; // no cell found: said so, never guessed
      const probs = row.probabilities as Record<string, number>;
      expect(Object.keys(probs).sort()).toEqual([...card.classes].sort());
      const sum = Object.values(probs).reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(1, 4);
      expect(card.classes).toContain(row.label);
      expect(row.confidence).toBeCloseTo(Math.max(...Object.values(probs)), 6);
    }
    if (hasPbc) expect(rows.every((x) => x.label !== null)).toBe(true);
  });

  it('--tta: each cell is read in its 8 flips and turns, flagged by the threshold calibrated for them', async () => {
    const card = JSON.parse(readFileSync(join(MODEL_DIR, 'model.json'), 'utf8')) as ModelCard;
    const [plain, tta] = await Promise.all([
      hv(['predict', '--json', ...goodInBatch]),
      hv(['predict', '--json', '--tta', ...goodInBatch]),
    ]);
    if (!card.testTimeAugmentation) {
      expect(tta.code).not.toBe(0);
      expect(tta.stderr).toMatch(/not calibrated for test-time augmentation/);
      return;
    }
    expect(tta.code, tta.stderr).toBe(0);
    type Row = {
      label: string | null;
      confidence: number;
      needsReview: boolean;
      reviewReasons: string[];
      probabilities: object;
      cells: { confidence: number; reviewReasons: string[] }[];
    };
    const a = JSON.parse(plain.stdout) as Row[];
    const b = JSON.parse(tta.stdout) as Row[];
    expect(b).toHaveLength(a.length);
    for (const [i, row] of b.entries()) {
      if (row.label === null) continue;
      expect(Object.keys(row.probabilities).sort()).toEqual([...card.classes].sort());
      const t = card.testTimeAugmentation.reviewThreshold;
      for (const c of row.cells) expect(c.reviewReasons.includes('low_confidence')).toBe(c.confidence < t);
      expect(row.confidence).not.toBe(a[i].confidence);
    }
  });

  it('--csv prints a header with every class, then one row per image', async () => {
    const r = await hv(['predict', '--csv', batch]);
    expect(r.code).toBe(1); // the corrupt image
    const card = JSON.parse(readFileSync(join(MODEL_DIR, 'model.json'), 'utf8')) as { classes: string[] };
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(
      ['file', 'label', 'confidence', 'needsReview', 'reviewReasons', 'cells', ...card.classes, 'error'].join(
        ',',
      ),
    );
    expect(lines).toHaveLength(5);
    const width = lines[0].split(',').length;
    for (const line of lines.slice(1)) expect(line.split(',')).toHaveLength(width);
    expect(lines.find((l) => l.includes('bad.jpg'))).toMatch(/corrupt or truncated/);
  });
});

describe.skipIf(!hasModel)('hematovision evaluate', { concurrent: true }, () => {
  it('--json prints exactly one JSON object; --report writes an HTML file with its charts', async () => {
    const report = join(tmp, 'report.html');
    const r = await hv(['evaluate', '--data', labelled, '--json', '--report', report]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('    at ');
    // Exactly one JSON value on stdout: progress and notes go elsewhere.
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const out = JSON.parse(r.stdout) as {
      accuracy: number;
      macroF1: number;
      ece: number;
      n: number;
      classes: string[];
      perClass: Record<string, { precision: number; recall: number; f1: number; support: number }>;
      confusionMatrix: number[][];
      skipped: { nonImage: number; unknownClass: Record<string, number> };
      noCell: number;
      unreadable: number;
      review: { rate: number; acceptedAccuracy: number; silentErrorRate: number; n: number };
      domain: { score: number; unfamiliar: boolean } | null;
    };
    expect(Array.isArray(out)).toBe(false);
    // Silent errors are errors: never more than the share of wrong answers.
    expect(out.review.n).toBe(out.n);
    expect(out.review.silentErrorRate).toBeLessThanOrEqual(1 - out.accuracy + 1e-9);
    expect(out.review.rate).toBeGreaterThanOrEqual(0);
    expect(out).toHaveProperty('domain');
    expect(Object.keys(out)).toEqual(
      expect.arrayContaining([
        'accuracy',
        'macroF1',
        'ece',
        'n',
        'classes',
        'perClass',
        'confusionMatrix',
        'skipped',
      ]),
    );
    const card = JSON.parse(readFileSync(join(MODEL_DIR, 'model.json'), 'utf8')) as { classes: string[] };
    expect(out.classes).toEqual(card.classes);
    // 12 good images; the corrupt one is unreadable, the smudge cells and the .txt are skipped.
    expect(out.n).toBe(12);
    expect(out.unreadable).toBe(1);
    expect(out.skipped).toEqual({ nonImage: 1, unknownClass: { smudge: 2 } });
    for (const m of [out.accuracy, out.macroF1, out.ece]) {
      expect(m).toBeGreaterThanOrEqual(0);
      expect(m).toBeLessThanOrEqual(1);
    }
    const k = card.classes.length;
    expect(out.confusionMatrix).toHaveLength(k);
    const answered = out.confusionMatrix.flat().reduce((a, b) => a + b, 0);
    expect(answered).toBe(out.n - out.noCell);
    const correct = out.confusionMatrix.reduce((a, row, i) => a + row[i], 0);
    expect(out.accuracy).toBeCloseTo(correct / out.n, 9);
    expect(Object.values(out.perClass).reduce((a, p) => a + p.support, 0)).toBe(out.n);
    for (const c of FOUR_CLASSES) expect(out.perClass[c].support).toBe(3);

    const html = readFileSync(report, 'utf8');
    expect(html).toMatch(/^<!doctype html>/i);
    expect((html.match(/<svg[\s>]/g) ?? []).length).toBeGreaterThanOrEqual(2);
  });

  it('an image with no white cell is counted in its own "no answer" column', async () => {
    const dir = join(tmp, 'with-blank');
    for (const c of FOUR_CLASSES) {
      mkdirSync(join(dir, c), { recursive: true });
      copyFileSync(join(labelled, c, readdirSync(join(labelled, c)).sort()[0]), join(dir, c, 'cell.jpg'));
    }
    // Plain background: nothing for the locator to find.
    const blank = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#e8c8c8' } })
      .jpeg()
      .toBuffer();
    writeFileSync(join(dir, 'monocyte', 'blank.jpg'), blank);

    const json = await hv(['evaluate', '--data', dir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as {
      n: number;
      noCell: number;
      noAnswer: number[];
      classes: string[];
    };
    expect(out.n).toBe(5);
    expect(out.noCell).toBe(1);
    expect(out.noAnswer).toEqual(out.classes.map((c) => (c === 'monocyte' ? 1 : 0)));

    const text = await hv(['evaluate', '--data', dir]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    const header = lines.find((l) => l.includes('no answer'));
    expect(header).toBeDefined();
    const row = lines.slice(lines.indexOf(header!)).find((l) => l.trimStart().startsWith('monocyte'));
    expect(row?.trim().split(/\s+/).at(-1)).toBe('1');
  });

  it('--score-unknown runs the cells of classes the model does not know and says how many it flagged', async () => {
    const r = await hv(['evaluate', '--data', labelled, '--json', '--score-unknown']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      n: number;
      review: { n: number; silentErrorRate: number; rate: number };
      unknownClasses: Record<string, { n: number; flagged: number }>;
    };
    expect(out.n).toBe(12); // accuracy stays over the known classes
    expect(out.review.n).toBe(14); // review counts the smudge cells too, each a wrong answer
    expect(out.unknownClasses.smudge.n).toBe(2);
    expect(out.unknownClasses.smudge.flagged).toBeGreaterThanOrEqual(0);
    expect(out.review.silentErrorRate).toBeGreaterThanOrEqual(
      (2 - out.unknownClasses.smudge.flagged) / 14 - 1e-9,
    );
  });

  it('the text output says what was skipped and which file was unreadable', async () => {
    const r = await hv(['evaluate', '--data', labelled]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Confusion matrix/);
    expect(r.stdout).toMatch(/smudge \(2\)/);
    expect(r.stdout).toMatch(/Skipped 1 non-image file/);
    expect(r.stderr).toMatch(/unreadable: .*zz-corrupt\.jpg/);
  });
});

describe('bin/hematovision.js as a child process', { concurrent: true }, () => {
  it('--help, exit 0', async () => {
    const r = await spawned(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: hematovision /);
    expect(r.stdout).toMatch(/^ {2}predict /m);
  });

  it.skipIf(!hasModel)('predict --json on one image, exit 0', async () => {
    const r = await spawned(['predict', '--json', goodInBatch[0]]);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { file: string; label: string | null }[];
    expect(rows).toHaveLength(1);
    expect(rows[0].file).toBe(goodInBatch[0]);
  });

  it('a path that does not exist: the error printed once, exit 1', async () => {
    const missing = join(tmp, 'nope.jpg');
    const r = await spawned(['predict', missing]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`error: No such file or folder: ${missing}\n`);
  });
});
