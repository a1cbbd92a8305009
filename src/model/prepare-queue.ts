/**
 * The order in which the preparation pool's threads take images (prepare-pool.ts). Groups (one analyzeBatch
 * call each, i.e. one request) take turns; interactive groups go before bulk ones (test-time augmentation,
 * many images). A large image (heavy) or a bulk group's image is restricted: it runs only on the pool's
 * restricted thread (one, at low priority), never on the threads that serve ordinary photos, so another
 * client's photo neither waits for it nor shares a core with it on equal terms (issue 15: a bulk request's
 * decoding on both threads of 2 cores tripled another client's p50). Pure ordering, no threads.
 */
import type { Priority } from './run-queue.js';

export interface PrepareTaskKind {
  /** Above the pool's pixel limit. */
  heavy: boolean;
  /** Of a bulk group. */
  bulk: boolean;
}

/** The kind of thread asking for a task: one serving ordinary photos, or the restricted one. */
export type PrepareLane = 'ordinary' | 'restricted';

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
   * The first task in turn order for a thread of `lane`: an ordinary thread takes unrestricted tasks only, the
   * restricted thread restricted ones only (heavy or bulk). Interactive groups first; a bulk one only when
   * `mayBulk` (no interactive work in flight, bulk-hold.ts). Its group then goes behind the other groups.
   */
  take(lane: PrepareLane, mayBulk = true): T | undefined {
    const mayStart = (t: T) => restricted(t) === (lane === 'restricted');
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

/** Whether a task runs on the restricted thread. */
export function restricted(t: PrepareTaskKind): boolean {
  return t.heavy || t.bulk;
}
