import { describe, expect, it } from 'vitest';
import { BulkHold } from './bulk-hold.js';

describe('BulkHold', () => {
  it('lets bulk work start only when no interactive work is in flight, or once per maxHoldMs', () => {
    let now = 1000;
    const hold = new BulkHold(100, () => now);
    expect(hold.mayStartBulk()).toBe(true);
    hold.bulkStarted();
    const end = hold.begin();
    expect(hold.mayStartBulk()).toBe(false);
    now += 60;
    expect(hold.waitMs()).toBe(40);
    now += 40;
    // Held as long as allowed: one bulk unit may start, then the wait begins again.
    expect(hold.mayStartBulk()).toBe(true);
    hold.bulkStarted();
    expect(hold.mayStartBulk()).toBe(false);
    end();
    expect(hold.mayStartBulk()).toBe(true);
    expect(hold.waitMs()).toBe(0);
  });

  it('tells its listeners when the last interactive work ends, once per end', () => {
    const hold = new BulkHold(100, () => 0);
    hold.bulkStarted();
    let idle = 0;
    hold.onIdle(() => idle++);
    const a = hold.begin();
    const b = hold.begin();
    a();
    a();
    expect([idle, hold.interactive, hold.mayStartBulk()]).toEqual([0, 1, false]);
    b();
    expect([idle, hold.interactive, hold.mayStartBulk()]).toEqual([1, 0, true]);
  });
});
