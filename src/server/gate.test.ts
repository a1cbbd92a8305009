import { describe, expect, it } from 'vitest';
import { Gate } from './gate.js';

describe('Gate', () => {
  it('lets one in at a time, the others in arrival order', async () => {
    const gate = new Gate(1);
    const order: string[] = [];
    const hold = async (name: string, ms: number) => {
      const release = await gate.acquire();
      order.push(`${name} in`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${name} out`);
      release();
      release(); // a second call changes nothing
    };
    await Promise.all([hold('a', 20), hold('b', 5), hold('c', 5)]);
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out', 'c in', 'c out']);
    expect(gate.load).toEqual({ active: 0, waiting: 0 });
  });
});
