/**
 * The order in which the preparation pool's threads take images (prepare-pool.ts). Groups (one analyzeBatch
 * call each, i.e. one request) take turns; interactive groups go before bulk ones (test-time augmentation,
 * many images). A large image (heavy) or a bulk group's image is restricted: restricted tasks never hold every
 * thread, so one thread always stays free for another client's ordinary photo (issue 15: a bulk request's
 * decoding on both threads of 2 cores tripled another client's p50). Pure ordering, no threads.
 */
import type { Priority } from './run-queue.js';

export interface PrepareTaskKind {
  /** Above the pool's pixel limit: at most one runs at a time. */
  heavy: boolean;
  /** Of a bulk group. */
  bulk: boolean;
}

/** Tasks of one group wait their turn behind each other, not behind other groups'. */
export interface PrepareGroup {
  readonly id: number;
  readonly priority: Priority;
}

interface Group<T> {
  priority: Priority;
  tasks: T[];
}

export class PrepareQueue<T extends PrepareTaskKind> {
  /** Waiting tasks per group; within a priority, groups take turns in insertion order. */
  private readonly groups = new Map<number, Group<T>>();
  private nextGroup = 1;

  constructor(private readonly threads: number) {}

  group(priority: Priority = 'interactive'): PrepareGroup {
    return { id: this.nextGroup++, priority };
  }

  /** `task.bulk` must say whether `group` is bulk. */
  add(group: PrepareGroup, task: T): void {
    const g = this.groups.get(group.id) ?? { priority: group.priority, tasks: [] };
    g.tasks.push(task);
    this.groups.set(group.id, g);
  }

  /**
   * The first task in turn order that may start next to the `running` ones: interactive groups first; a heavy
   * one only while no heavy one runs; a restricted one (heavy or bulk) only while restricted ones hold fewer
   * than all threads but one; a bulk one only when `mayBulk` (no interactive work in flight, bulk-hold.ts).
   * Its group then goes behind the other groups.
   */
  take(running: readonly PrepareTaskKind[], mayBulk = true): T | undefined {
    const heavyRunning = running.some((t) => t.heavy);
    const restrictedRunning = running.filter(restricted).length;
    const restrictedFull = this.threads > 1 && restrictedRunning >= this.threads - 1;
    const mayStart = (t: T) => !(t.heavy && heavyRunning) && !(restricted(t) && restrictedFull);
    for (const priority of mayBulk ? (['interactive', 'bulk'] as const) : (['interactive'] as const)) {
      for (const [id, g] of this.groups) {
        if (g.priority !== priority) continue;
        const i = g.tasks.findIndex(mayStart);
        if (i < 0) continue;
        const [task] = g.tasks.splice(i, 1);
        this.groups.delete(id);
        if (g.tasks.length > 0) this.groups.set(id, g);
        return task;
      }
    }
    return undefined;
  }

  /** Whether a bulk task waits. */
  get bulkWaiting(): boolean {
    return [...this.groups.values()].some((g) => g.priority === 'bulk' && g.tasks.length > 0);
  }

  /** Removes and returns every waiting task (closing). */
  clear(): T[] {
    const all = [...this.groups.values()].flatMap((g) => g.tasks);
    this.groups.clear();
    return all;
  }
}

function restricted(t: PrepareTaskKind): boolean {
  return t.heavy || t.bulk;
}
