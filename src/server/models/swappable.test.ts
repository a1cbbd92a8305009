import { describe, expect, it } from 'vitest';
import { fakeVision } from '../../testing/server.js';
import { SwappableVision } from './swappable.js';

describe('SwappableVision', () => {
  it('serves the new model at once and closes the old one only after its calls in flight end', async () => {
    const old = fakeVision();
    const next = fakeVision();
    let closed = 0;
    old.close = async () => void closed++;
    let release: () => void = () => {};
    const slow = new Promise<void>((r) => (release = r));
    const analyze = old.analyze.bind(old);
    old.analyze = async (input, o) => {
      await slow;
      return analyze(input, o);
    };
    const v = new SwappableVision(old);
    const inFlight = v.analyze(Buffer.from('x'));
    const swapped = v.swap(next);
    expect(v.current).toBe(next);
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(0); // still answering the call that started on it
    release();
    await inFlight.catch(() => undefined);
    await swapped;
    expect(closed).toBe(1);
    await v.closeSwapped(); // the current one is not the initial one: closed too
  });
});
