/**
 * Which rows the network runs next (issue 15: four clients sending 50 images with test-time augmentation
 * raised another client's single-image p99 9.8×). Calls are interactive (a few rows: someone waits for one
 * image) or bulk (test-time augmentation, many images). Interactive calls go first; a bulk call runs only when
 * no interactive call waits, one call per turn and in small turns, so an interactive call that arrives while
 * bulk rows run waits for one small run at most. Bulk calls take turns with each other, and get a turn after a
 * few interactive turns in a row, so a stream of single images cannot starve them.
 *
 * A classifier with a second, low-priority session for bulk rows (classifier.ts) runs two lanes at once, each
 * asking for its own priority's turns: bulk rows then never delay an interactive call's run, and they yield the
 * cores to it (thread-priority.ts).
 *
 * Pure ordering, no network: the classifier asks for a turn, runs it, then hands the served calls back.
 */

export type Priority = 'interactive' | 'bulk';

/** Largest number of rows coalesced into one run while others wait (short runs keep latency tails short). */
export const MAX_BATCH = 8;
/** Largest single network run: the rows of one call waiting alone go in runs of at most this. */
export const MAX_RUN_ROWS = 16;
/** Rows of a bulk turn: an interactive call arriving meanwhile waits for at most this many. */
export const BULK_TURN_ROWS = 4;
/** Interactive turns in a row while a bulk call waits, before the bulk call gets one turn. */
export const INTERACTIVE_STREAK = 4;

export interface Turnable {
  /** Images, each `views` rows. */
  n: number;
  views: number;
  /** Rows run so far. */
  done: number;
  priority: Priority;
  failed?: boolean;
}

/** Rows start..start+count of one call, in one run. */
export interface Slice<T> {
  p: T;
  start: number;
  count: number;
}

/** A call's priority when its caller did not say: many rows, or several views of each image, is bulk. */
export function defaultPriority(n: number, views: number): Priority {
  return views > 1 || n * views > MAX_BATCH ? 'bulk' : 'interactive';
}

export class RunQueue<T extends Turnable> {
  private calls: T[] = [];
  /** Interactive turns since a waiting bulk call last had one. */
  private streak = 0;

  get length(): number {
    return this.calls.length;
  }

  push(call: T): void {
    this.calls.push(call);
  }

  /** Removes and returns the calls without rows (nothing to run: the caller answers them at once). */
  takeEmpty(): T[] {
    const empty = this.calls.filter((c) => c.n === 0);
    this.calls = this.calls.filter((c) => c.n > 0);
    return empty;
  }

  /** Removes and returns every call (closing). */
  clear(): T[] {
    return this.calls.splice(0);
  }

  /** Whether a call of this priority waits. */
  waiting(priority: Priority): boolean {
    return this.calls.some((c) => c.priority === priority && c.n > 0);
  }

  /**
   * The next run's slices, in row order; empty when nothing may run now (nothing waits, or only bulk calls
   * while `mayBulk` is false: interactive work is in flight elsewhere, bulk-hold.ts). Does not change `done`.
   * `lane`: only calls of that priority, for a runner of its own (then bulk calls wait for no interactive turn
   * and interactive calls never give one up); absent, one runner takes turns for both.
   */
  next(mayBulk = true, lane?: Priority): Slice<T>[] {
    const interactive = lane === 'bulk' ? [] : this.calls.filter((c) => c.priority === 'interactive');
    const bulk = lane === 'interactive' ? [] : this.calls.filter((c) => c.priority === 'bulk');
    const starved = !lane && interactive.length > 0 && this.streak >= INTERACTIVE_STREAK;
    if (bulk.length > 0 && (starved || (interactive.length === 0 && mayBulk))) {
      this.streak = 0;
      const p = bulk[0];
      return [{ p, start: p.done, count: Math.min(left(p), BULK_TURN_ROWS) }];
    }
    if (interactive.length === 0) return [];
    this.streak = bulk.length > 0 ? this.streak + 1 : 0;
    // Alone: every call waiting, or (a lane of its own) every interactive one.
    const limit = (lane ? interactive.length : this.calls.length) === 1 ? MAX_RUN_ROWS : MAX_BATCH;
    // One run holds one kind of rows (probabilities or logits to average): the first call's views.
    const views = interactive[0].views;
    const slices: Slice<T>[] = [];
    let rows = 0;
    for (const p of interactive) {
      if (p.views !== views) continue;
      const count = Math.min(left(p), limit - rows);
      if (count <= 0) break;
      slices.push({ p, start: p.done, count });
      rows += count;
    }
    return slices;
  }

  /**
   * After a run: served calls that are finished (or failed) leave the queue; those with rows left go behind
   * every call that was not served, so calls of the same priority take turns.
   */
  served(slices: Slice<T>[]): void {
    const served = new Set(slices.map((s) => s.p));
    const waiting = this.calls.filter((p) => !served.has(p));
    const unfinished = this.calls.filter((p) => served.has(p) && !p.failed && left(p) > 0);
    this.calls = [...waiting, ...unfinished];
  }
}

function left(p: Turnable): number {
  return p.n * p.views - p.done;
}
