import { describe, expect, it } from 'vitest';
import { PrepareQueue, type PrepareGroup, type PrepareLane, type PrepareTaskKind } from './prepare-queue.js';

interface Task extends PrepareTaskKind {
  name: string;
}

function add(q: PrepareQueue<Task>, group: PrepareGroup, name: string, heavy = false): void {
  q.add(group, { name, heavy, bulk: group.priority === 'bulk' });
}

/** What each thread of these lanes takes, in order (one task each), as the pool fills free threads. */
function fill(q: PrepareQueue<Task>, lanes: PrepareLane[], mayBulk = true): (string | undefined)[] {
  return lanes.map((lane) => q.take(lane, mayBulk)?.name);
}

describe('PrepareQueue', () => {
  it('never gives a bulk request an ordinary thread: they stay free for another client’s photo', () => {
    const q = new PrepareQueue<Task>();
    const tta = q.group('bulk');
    for (let i = 0; i < 16; i++) add(q, tta, `tta${i}`);
    expect(fill(q, ['ordinary', 'ordinary', 'restricted'])).toEqual([undefined, undefined, 'tta0']);
    // A photo arriving now starts at once on an ordinary thread.
    add(q, q.group(), 'photo');
    expect(fill(q, ['ordinary'])).toEqual(['photo']);
  });

  it('takes interactive groups before bulk groups that were queued first', () => {
    const q = new PrepareQueue<Task>();
    const a = q.group('bulk');
    add(q, a, 'a0');
    const bomb = q.group();
    add(q, bomb, 'bomb', true);
    const photo = q.group();
    add(q, photo, 'photo');
    expect(fill(q, ['restricted', 'ordinary', 'restricted'])).toEqual(['bomb', 'photo', 'a0']);
  });

  it('lets bulk groups take turns with each other on their thread', () => {
    const q = new PrepareQueue<Task>();
    const a = q.group('bulk');
    const b = q.group('bulk');
    for (let i = 0; i < 3; i++) {
      add(q, a, `a${i}`);
      add(q, b, `b${i}`);
    }
    const order: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++) order.push(q.take('restricted')?.name);
    expect(order).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('puts an interactive group’s large images on the restricted thread and its small ones on the others', () => {
    const q = new PrepareQueue<Task>();
    const g = q.group();
    add(q, g, 'big0', true);
    add(q, g, 'big1', true);
    add(q, g, 'small', false);
    expect(fill(q, ['ordinary', 'ordinary', 'restricted'])).toEqual(['small', undefined, 'big0']);
    expect(fill(q, ['restricted'])).toEqual(['big1']);
  });

  it('lets interactive photos use every ordinary thread', () => {
    const q = new PrepareQueue<Task>();
    add(q, q.group(), 'p0');
    add(q, q.group(), 'p1');
    expect(fill(q, ['ordinary', 'ordinary', 'restricted'])).toEqual(['p0', 'p1', undefined]);
  });

  it('holds bulk images back when told to, not interactive ones (large ones included)', () => {
    const q = new PrepareQueue<Task>();
    add(q, q.group('bulk'), 'tta0');
    expect(q.bulkWaiting).toBe(true);
    expect(q.take('restricted', false)).toBeUndefined();
    add(q, q.group(), 'bomb', true);
    expect(q.take('restricted', false)?.name).toBe('bomb');
    expect(q.take('restricted', true)?.name).toBe('tta0');
    expect(q.bulkWaiting).toBe(false);
  });

  it('keeps a group bulk when its tasks arrive after the queue emptied', () => {
    const q = new PrepareQueue<Task>();
    const tta = q.group('bulk');
    add(q, tta, 'tta0');
    expect(fill(q, ['restricted'])).toEqual(['tta0']);
    add(q, tta, 'tta1');
    expect(fill(q, ['ordinary', 'ordinary'])).toEqual([undefined, undefined]);
    expect(q.clear().map((t) => t.name)).toEqual(['tta1']);
  });
});
