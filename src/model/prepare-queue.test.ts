import { describe, expect, it } from 'vitest';
import { PrepareQueue, type PrepareGroup, type PrepareTaskKind } from './prepare-queue.js';

interface Task extends PrepareTaskKind {
  name: string;
}

function add(q: PrepareQueue<Task>, group: PrepareGroup, name: string, heavy = false): void {
  q.add(group, { name, heavy, bulk: group.priority === 'bulk' });
}

/** Fills free threads as the pool does: takes tasks until none may start; returns what runs. */
function fill(q: PrepareQueue<Task>, threads: number, running: Task[] = []): Task[] {
  const now = [...running];
  while (now.length < threads) {
    const t = q.take(now);
    if (!t) break;
    now.push(t);
  }
  return now;
}

const names = (ts: Task[]) => ts.map((t) => t.name);

describe('PrepareQueue', () => {
  it('never gives a bulk request every thread: one stays free for another client’s photo', () => {
    const q = new PrepareQueue<Task>(2);
    const tta = q.group('bulk');
    for (let i = 0; i < 16; i++) add(q, tta, `tta${i}`);
    const running = fill(q, 2);
    expect(names(running)).toEqual(['tta0']);
    // A photo arriving now starts at once on the free thread.
    add(q, q.group(), 'photo');
    expect(names(fill(q, 2, running))).toEqual(['tta0', 'photo']);
  });

  it('takes interactive groups before bulk groups that were queued first', () => {
    const q = new PrepareQueue<Task>(2);
    const a = q.group('bulk');
    const b = q.group('bulk');
    add(q, a, 'a0');
    add(q, b, 'b0');
    const photo = q.group();
    add(q, photo, 'photo');
    expect(names(fill(q, 2))).toEqual(['photo', 'a0']);
  });

  it('lets bulk groups take turns with each other on their one thread', () => {
    const q = new PrepareQueue<Task>(2);
    const a = q.group('bulk');
    const b = q.group('bulk');
    for (let i = 0; i < 3; i++) {
      add(q, a, `a${i}`);
      add(q, b, `b${i}`);
    }
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(q.take([])!.name);
    expect(order).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('counts heavy images and bulk images against the same restricted threads', () => {
    const q = new PrepareQueue<Task>(2);
    const bomb = q.group();
    add(q, bomb, 'bomb', true);
    const tta = q.group('bulk');
    add(q, tta, 'tta0');
    const photo = q.group();
    add(q, photo, 'photo');
    // The bomb takes the restricted thread; the bulk image waits; the photo runs beside the bomb.
    const running = fill(q, 2);
    expect(names(running)).toEqual(['bomb', 'photo']);
    expect(q.take([running[0]])?.name).toBeUndefined();
    expect(q.take([])?.name).toBe('tta0');
  });

  it('runs one heavy image at a time, while an interactive group’s small images use the other thread', () => {
    const q = new PrepareQueue<Task>(2);
    const g = q.group();
    add(q, g, 'big0', true);
    add(q, g, 'big1', true);
    add(q, g, 'small', false);
    expect(names(fill(q, 2))).toEqual(['big0', 'small']);
  });

  it('lets interactive photos use every thread', () => {
    const q = new PrepareQueue<Task>(2);
    add(q, q.group(), 'p0');
    add(q, q.group(), 'p1');
    expect(names(fill(q, 2))).toEqual(['p0', 'p1']);
  });

  it('holds bulk images back when told to, not interactive ones', () => {
    const q = new PrepareQueue<Task>(2);
    add(q, q.group('bulk'), 'tta0');
    expect(q.bulkWaiting).toBe(true);
    expect(q.take([], false)).toBeUndefined();
    add(q, q.group(), 'photo');
    expect(q.take([], false)?.name).toBe('photo');
    expect(q.take([], true)?.name).toBe('tta0');
    expect(q.bulkWaiting).toBe(false);
  });

  it('with a single thread, restricts nothing it cannot keep free', () => {
    const q = new PrepareQueue<Task>(1);
    const tta = q.group('bulk');
    add(q, tta, 'tta0');
    expect(names(fill(q, 1))).toEqual(['tta0']);
  });

  it('keeps a group bulk when its tasks arrive after the queue emptied', () => {
    const q = new PrepareQueue<Task>(2);
    const tta = q.group('bulk');
    add(q, tta, 'tta0');
    const running = fill(q, 2);
    add(q, tta, 'tta1');
    expect(names(fill(q, 2, running))).toEqual(['tta0']);
    expect(q.clear().map((t) => t.name)).toEqual(['tta1']);
  });
});
