import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { hasShared, SHARED, skipNote, TFLITE } from '../testing/shared.js';
import {
  buildBackboneModel,
  DEFAULT_FEATURE_BLOCKS,
  loadTfliteBackbone,
  mobileNetV2Spec,
  withBackboneOf,
} from './backbone.js';
import { buildInferenceGraph } from './net/forward.js';
import { referenceForward } from './net/reference.js';
import { readMetadata } from './onnx/graph-builder.js';
import { OnnxSession } from './onnx/runtime.js';
import { relativeError } from '../testing/numeric.js';

if (!hasShared) skipNote('backbone import tests', `${TFLITE}`);
const python = '/usr/bin/python3';
const hasChecker =
  existsSync(python) &&
  (() => {
    try {
      execFileSync(python, ['-c', 'import onnx'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
if (!hasChecker) skipNote('onnx.checker test', "Debian's python3-onnx");

/** The cat photo as the backbone's input: 224² stretched, (p − 128)/128, NCHW. */
async function catInput(): Promise<Float32Array> {
  const { data } = await sharp(join(SHARED, 'weights/cat_720p.jpg'))
    .resize(224, 224, { fit: 'fill' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const x = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < 224 * 224; i++)
    for (let c = 0; c < 3; c++) x[c * 224 * 224 + i] = (data[i * 3 + c] - 128) / 128;
  return x;
}

describe.skipIf(!hasShared)('MobileNetV2 import from TFLite', () => {
  const tflite = hasShared ? readFileSync(TFLITE) : Buffer.alloc(0);

  it('parses the flatbuffer: 66 operators, uint8 input quantised as (q − 128)/128', () => {
    const g = loadTfliteBackbone(tflite);
    expect(g.ops).toHaveLength(66);
    const input = g.tensors[g.inputs[0]];
    expect(input.shape).toEqual([1, 224, 224, 3]);
    expect(input.scale).toBeCloseTo(1 / 128, 6);
    expect(input.zeroPoint).toBe(128);
  });

  it('rejects a file with another sha256 and a file that is not TFLite', () => {
    const changed = Buffer.from(tflite);
    changed[changed.length - 1] ^= 1;
    expect(() => loadTfliteBackbone(changed)).toThrow(/sha256/);
    expect(() => loadTfliteBackbone(Buffer.from('not a model at all'))).toThrow(/TFL3/);
  });

  it('classifies the cat photo as a cat with the full ImageNet network', async () => {
    const onnx = buildBackboneModel(tflite, { includeImagenetHead: true });
    const session = await OnnxSession.create(onnx);
    const x = await catInput();
    const out = await session.run({ input: { data: x, dims: [1, 3, 224, 224] } }, [
      'imagenet_probabilities',
      'features',
      'feature_map',
    ]);
    const p = out.imagenet_probabilities.data;
    const top = p.indexOf(Math.max(...p));
    const labels = readFileSync(join(SHARED, 'weights/imagenet_labels.txt'), 'utf8').split('\n');
    expect(labels[top]).toMatch(/cat/i);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    expect(out.features.dims).toEqual([1, 144 + 192 + 576 + 1280]);
    expect(out.feature_map.dims).toEqual([1, 1280, 7, 7]);
    // The last 1280 features are the pooled feature map.
    const fm = out.feature_map.data;
    const f = out.features.data;
    for (const c of [0, 100, 1279]) {
      let mean = 0;
      for (let j = 0; j < 49; j++) mean += fm[c * 49 + j] / 49;
      expect(f[144 + 192 + 576 + c]).toBeCloseTo(mean, 4);
    }
    await session.close();
  });

  it('computes the features a float64 forward pass of the same spec gives', async () => {
    const session = await OnnxSession.create(buildBackboneModel(tflite));
    const x = await catInput();
    const out = await session.run({ input: { data: x, dims: [1, 3, 224, 224] } }, [
      'features',
      'feature_map',
    ]);
    await session.close();
    const ref = referenceForward(mobileNetV2Spec(loadTfliteBackbone(tflite)), Float64Array.from(x), 1);
    const features = relativeError(out.features.data, ref.features);
    const featureMap = relativeError(out.feature_map.data, ref.tensors.get('Conv_1')!);
    console.log(
      `MobileNetV2 float32 ONNX vs float64 reference: features ${features.toExponential(1)}, ` +
        `feature map ${featureMap.toExponential(1)} (max |Δ| / max |ref|)`,
    );
    // About 1e-6 and 5e-6 here (float32 rounding through 52 layers); a wrong pad or weight layout is O(1).
    expect(features).toBeLessThan(5e-5);
    expect(featureMap).toBeLessThan(5e-5);
  });

  it('records the backbone identity in the model metadata', () => {
    const meta = readMetadata(buildBackboneModel(tflite));
    expect(meta['hematovision.feature_blocks']).toBe(DEFAULT_FEATURE_BLOCKS.join(','));
    expect(meta['hematovision.feature_dims']).toBe('144,192,576,1280');
    expect(meta['hematovision.backbone_id']).toContain('7aad0c74c5e3c06e');
  });

  it('reads the backbone weights back from a model it wrote, and refuses another backbone', () => {
    const tfl = loadTfliteBackbone(tflite);
    const spec = mobileNetV2Spec(tfl, { classes: 0 });
    const doubled = {
      ...spec,
      layers: spec.layers.map((l) => (l.kind === 'conv' ? { ...l, weight: l.weight.map((w) => 2 * w) } : l)),
    };
    const sha = tfl.sha256;
    const model = buildInferenceGraph(doubled, {
      head: false,
      metadata: readMetadata(buildBackboneModel(tflite)),
    });
    const back = withBackboneOf(spec, model, sha);
    for (const [i, l] of back.layers.entries()) {
      const d = doubled.layers[i];
      if (l.kind === 'conv' && d.kind === 'conv') {
        expect(Buffer.from(l.weight.buffer).equals(Buffer.from(d.weight.buffer)), l.name).toBe(true);
        expect(Buffer.from(l.bias.buffer).equals(Buffer.from(d.bias.buffer)), l.name).toBe(true);
      }
    }
    expect(() => withBackboneOf(spec, model, 'f'.repeat(64))).toThrow(/not built on this MobileNetV2/);
    const otherBlocks = buildBackboneModel(tflite, { featureBlocks: ['Conv_1'] });
    expect(() => withBackboneOf(spec, otherBlocks, sha)).toThrow(/pools blocks Conv_1/);
    expect(() => withBackboneOf(spec, new Uint8Array([1, 2, 3]), sha)).toThrow(/not an ONNX file/);
  });

  it.skipIf(!hasChecker)('writes a graph that passes onnx.checker (full check)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv-onnx-'));
    const file = join(dir, 'backbone.onnx');
    writeFileSync(file, buildBackboneModel(tflite, { includeImagenetHead: true }));
    const out = execFileSync(python, [
      '-c',
      'import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print("ok")',
      file,
    ]).toString();
    expect(out.trim()).toBe('ok');
  });
});
