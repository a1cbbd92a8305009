import { describe, expect, it } from 'vitest';
import {
  BULK_TURN_ROWS,
  defaultPriority,
  INTERACTIVE_STREAK,
  MAX_BATCH,
  MAX_RUN_ROWS,
  RunQueue,
  type Priority,
  type Slice,
  type Turnable,
} from './run-queue.js';

interface Call extends Turnable {
  name: string;
}

const call = (name: string, n: number, priority: Priority, views = 1): Call => ({
  name,
  n,
  views,
  done: 0,
  priority,
});

/** Runs one turn as the classifier does: the rows are done, then the served calls are handed back. */
function turn(q: RunQueue<Call>): string[] {
  const slices = q.next();
  for (const s of slices) s.p.done += s.count;
  q.served(slices);
  return slices.map((s) => `${s.p.name}:${s.count}`);
}

describe('RunQueue', () => {
  it('runs a waiting interactive call before a bulk call that was queued first', () => {
    const q = new RunQueue<Call>();
    q.push(call('tta', 50, 'bulk', 8));
    q.push(call('photo', 1, 'interactive'));
    expect(turn(q)).toEqual(['photo:1']);
    expect(turn(q)).toEqual([`tta:${BULK_TURN_ROWS}`]);
  });

  it('gives bulk calls small turns, one call per turn, taking turns with each other', () => {
    const q = new RunQueue<Call>();
    q.push(call('a', 50, 'bulk', 8));
    q.push(call('b', 50, 'bulk', 8));
    // Alone or not, a bulk turn is BULK_TURN_ROWS: an interactive call arriving meanwhile waits for that many.
    expect([turn(q), turn(q), turn(q)]).toEqual([
      [`a:${BULK_TURN_ROWS}`],
      [`b:${BULK_TURN_ROWS}`],
      [`a:${BULK_TURN_ROWS}`],
    ]);
    expect(BULK_TURN_ROWS).toBeLessThanOrEqual(MAX_BATCH);
  });

  it('an interactive call arriving during bulk turns is next, whatever bulk calls wait', () => {
    const q = new RunQueue<Call>();
    for (const name of ['a', 'b', 'c', 'd']) q.push(call(name, 50, 'bulk', 8));
    turn(q);
    turn(q);
    q.push(call('photo', 1, 'interactive'));
    expect(turn(q)).toEqual(['photo:1']);
    expect(q.length).toBe(4);
  });

  it('coalesces interactive calls of the same views, up to MAX_BATCH rows while others wait', () => {
    const q = new RunQueue<Call>();
    q.push(call('p1', 3, 'interactive'));
    q.push(call('p2', 3, 'interactive'));
    q.push(call('p3', 3, 'interactive'));
    expect(turn(q)).toEqual(['p1:3', 'p2:3', 'p3:2']);
    // p3's last row goes behind nobody else: it is alone now, and ends.
    expect(turn(q)).toEqual(['p3:1']);
    expect(q.length).toBe(0);
  });

  it('runs an interactive call waiting alone in runs of MAX_RUN_ROWS', () => {
    const q = new RunQueue<Call>();
    q.push(call('eight-cells', 8, 'interactive'));
    expect(turn(q)).toEqual(['eight-cells:8']);
    q.push(call('many', MAX_RUN_ROWS + 4, 'interactive'));
    expect(turn(q)).toEqual([`many:${MAX_RUN_ROWS}`]);
    expect(turn(q)).toEqual(['many:4']);
  });

  it('gives a waiting bulk call one turn after INTERACTIVE_STREAK interactive turns in a row', () => {
    const q = new RunQueue<Call>();
    q.push(call('tta', 50, 'bulk', 8));
    const turns: string[][] = [];
    for (let i = 0; i < 2 * (INTERACTIVE_STREAK + 1); i++) {
      // A stream of single photos: one always waits.
      q.push(call(`p${i}`, 1, 'interactive'));
      turns.push(turn(q));
    }
    const bulkTurns = turns.flatMap((t, i) => (t[0].startsWith('tta') ? [i] : []));
    expect(bulkTurns).toEqual([INTERACTIVE_STREAK, 2 * INTERACTIVE_STREAK + 1]);
  });

  it('keeps rows of different views apart and drops failed calls', () => {
    const q = new RunQueue<Call>();
    q.push(call('one-view', 2, 'interactive'));
    q.push(call('eight-views', 1, 'interactive', 8));
    expect(turn(q)).toEqual(['one-view:2']);
    const slices: Slice<Call>[] = q.next();
    expect(slices.map((s) => s.p.name)).toEqual(['eight-views']);
    slices[0].p.failed = true;
    q.served(slices);
    expect(q.length).toBe(0);
  });

  it('holds bulk turns while told to, but never an interactive call, nor a starved bulk call', () => {
    const q = new RunQueue<Call>();
    q.push(call('tta', 50, 'bulk', 8));
    expect(q.next(false)).toEqual([]);
    q.push(call('photo', 1, 'interactive'));
    const slices = q.next(false);
    expect(slices.map((s) => s.p.name)).toEqual(['photo']);
    for (const s of slices) s.p.done += s.count;
    q.served(slices);
    expect(q.next(true).map((s) => s.p.name)).toEqual(['tta']);
  });

  it('answers calls without rows apart', () => {
    const q = new RunQueue<Call>();
    q.push(call('empty', 0, 'bulk'));
    q.push(call('photo', 1, 'interactive'));
    expect(q.takeEmpty().map((c) => c.name)).toEqual(['empty']);
    expect(turn(q)).toEqual(['photo:1']);
  });

  it('calls test-time augmentation and more than MAX_BATCH rows bulk by default', () => {
    expect(defaultPriority(1, 1)).toBe('interactive');
    expect(defaultPriority(MAX_BATCH, 1)).toBe('interactive');
    expect(defaultPriority(MAX_BATCH + 1, 1)).toBe('bulk');
    expect(defaultPriority(1, 8)).toBe('bulk');
  });
});

describe('RunQueue lanes (a runner per priority)', () => {
  it('gives the interactive lane interactive calls only, never a bulk turn, however long they stream', () => {
    const q = new RunQueue<Call>();
    q.push(call('tta', 50, 'bulk', 8));
    for (let i = 0; i < 2 * INTERACTIVE_STREAK; i++) {
      q.push(call(`p${i}`, 1, 'interactive'));
      const slices = q.next(true, 'interactive');
      expect(slices.map((s) => s.p.name)).toEqual([`p${i}`]);
      for (const s of slices) s.p.done += s.count;
      q.served(slices);
    }
    expect(q.next(true, 'interactive')).toEqual([]);
    expect(q.waiting('bulk')).toBe(true);
    expect(q.waiting('interactive')).toBe(false);
  });

  it('gives the bulk lane small bulk turns while interactive calls wait, unless held', () => {
    const q = new RunQueue<Call>();
    q.push(call('photo', 1, 'interactive'));
    q.push(call('tta', 50, 'bulk', 8));
    expect(q.next(false, 'bulk')).toEqual([]);
    const slices = q.next(true, 'bulk');
    expect(slices.map((s) => `${s.p.name}:${s.count}`)).toEqual([`tta:${BULK_TURN_ROWS}`]);
    // The photo is still the interactive lane's, in a run of its own (the bulk call does not count).
    expect(q.next(true, 'interactive').map((s) => s.p.name)).toEqual(['photo']);
  });

  it('lets an interactive call waiting alone in its lane run MAX_RUN_ROWS rows beside bulk calls', () => {
    const q = new RunQueue<Call>();
    q.push(call('tta', 50, 'bulk', 8));
    q.push(call('upload', 40, 'interactive'));
    expect(q.next(true, 'interactive')[0].count).toBe(MAX_RUN_ROWS);
  });
});
