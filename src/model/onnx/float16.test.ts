import { describe, expect, it } from 'vitest';
import { fromFloat16, toFloat16 } from './float16.js';

describe('float16', () => {
  it('round-trips values within half precision and rounds the rest to the nearest half', () => {
    const exact = Float32Array.of(0, 1, -2, 0.5, 65504, -0.000060975551605224609375, 2 ** -24);
    expect(Array.from(fromFloat16(toFloat16(exact)))).toEqual(Array.from(exact));
    expect(Array.from(toFloat16(Float32Array.of(1, -2, 65504)))).toEqual([0x3c00, 0xc000, 0x7bff]);
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even one (1).
    expect(fromFloat16(toFloat16(Float32Array.of(1 + 2 ** -11)))[0]).toBe(1);
    expect(fromFloat16(toFloat16(Float32Array.of(1 + 3 * 2 ** -11)))[0]).toBe(1 + 2 ** -9);
    expect(fromFloat16(toFloat16(Float32Array.of(1e6)))[0]).toBe(Infinity);
    expect(Number.isNaN(fromFloat16(toFloat16(Float32Array.of(NaN)))[0])).toBe(true);
    const random = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898) * 3);
    const back = fromFloat16(toFloat16(random));
    for (let i = 0; i < random.length; i++)
      expect(Math.abs(back[i] - random[i])).toBeLessThanOrEqual(Math.abs(random[i]) * 2 ** -11 + 2 ** -25);
  });
});
