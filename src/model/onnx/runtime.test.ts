import { describe, expect, it } from 'vitest';
import { ModelError } from '../../errors.js';
import { GraphBuilder } from './graph-builder.js';
import { OnnxSession, OnnxThreadSession, type InferenceSession } from './runtime.js';

/** y = 2·x + 1 and z = sum over the last axis, for any batch. */
function tinyModel(): Uint8Array {
  const g = new GraphBuilder('tiny');
  const x = g.input('x', ['N', 5]);
  g.op('Add', [g.op('Mul', [x, g.scalar('two', 2)]), g.scalar('one', 1)], {}, 'y');
  g.op('ReduceSum', [x, g.int64s('axes', [1])], { keepdims: 0 }, 'z');
  g.output('y', ['N', 5]);
  g.output('z', ['N']);
  return g.toBytes();
}

describe('ONNX sessions: in this thread and in a worker thread', () => {
  const model = tinyModel();
  const x = Float32Array.from({ length: 15 }, (_, i) => i - 4);

  it('give the same outputs, also for an input that views part of a larger buffer', async () => {
    const sessions: InferenceSession[] = [
      await OnnxSession.create(model),
      await OnnxThreadSession.create(model),
    ];
    const padded = new Float32Array(25);
    padded.set(x, 5);
    const view = padded.subarray(5, 20);
    for (const s of sessions) {
      expect([...s.inputNames]).toEqual(['x']);
      expect([...s.outputNames].sort()).toEqual(['y', 'z']);
      const out = await s.run({ x: { data: view, dims: [3, 5] } }, ['y', 'z']);
      expect(out.y.dims).toEqual([3, 5]);
      expect([...out.y.data]).toEqual([...x].map((v) => 2 * v + 1));
      expect([...out.z.data]).toEqual([-10, 15, 40]);
    }
    // The caller's buffer is neither detached nor changed.
    expect([...view]).toEqual([...x]);
    await Promise.all(sessions.map((s) => s.close()));
  });

  it('worker: concurrent runs each get their own answer', async () => {
    const s = await OnnxThreadSession.create(model);
    const runs = await Promise.all(
      [1, 2, 3].map((m) => s.run({ x: { data: x.map((v) => v * m), dims: [3, 5] } }, ['z'])),
    );
    runs.forEach((r, j) => expect([...r.z.data]).toEqual([-10, 15, 40].map((v) => v * (j + 1))));
    await s.close();
  });

  it('worker: a bad run is a ModelError and the session keeps working; a closed one refuses', async () => {
    const s = await OnnxThreadSession.create(model);
    const bad = s.run({ x: { data: new Float32Array(4), dims: [2, 2] } }, ['y']);
    await expect(bad).rejects.toBeInstanceOf(ModelError);
    const ok = await s.run({ x: { data: x, dims: [3, 5] } }, ['z']);
    expect([...ok.z.data]).toEqual([-10, 15, 40]);
    await s.close();
    await expect(s.run({ x: { data: x, dims: [3, 5] } }, ['z'])).rejects.toThrow(/closed/);
  });

  it('worker: close lets a run in flight finish first', async () => {
    const s = await OnnxThreadSession.create(model);
    const run = s.run({ x: { data: x, dims: [3, 5] } }, ['z']);
    const closed = s.close();
    expect([...(await run).z.data]).toEqual([-10, 15, 40]);
    await closed;
  });

  it('worker: bytes that are not a model give a ModelError', async () => {
    const e = await OnnxThreadSession.create(Uint8Array.of(1, 2, 3)).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ModelError);
    expect((e as ModelError).code).toBe('bad_model');
    expect((e as ModelError).message).toMatch(/could not load the model/);
  });
});
