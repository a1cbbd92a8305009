/**
 * Bulk work waits while interactive work is in flight (issue 15). On 2 cores, a bulk request's network turns
 * and decoding share the CPU with another client's photo, whatever the queues' order: the photo's decoding
 * and network run slow down 2–3×. So while an interactive request is being analysed (from its decoding to its
 * network answer), no new bulk unit (one network turn, or one image's decoding) starts, except one every
 * `maxHoldMs`: a stream of photos slows bulk work down but cannot stop it. Units already running finish.
 */
export class BulkHold {
  private active = 0;
  /** When a bulk unit last started. */
  private lastBulk = -Infinity;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly maxHoldMs = 100,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Interactive work starts; the function returned ends it (call it once). */
  begin(): () => void {
    this.active++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      if (this.active === 0) for (const l of [...this.listeners]) l();
    };
  }

  /** Whether a bulk unit may start now. */
  mayStartBulk(): boolean {
    return this.active === 0 || this.clock() - this.lastBulk >= this.maxHoldMs;
  }

  /** A bulk unit starts (counts for the next one's wait). */
  bulkStarted(): void {
    this.lastBulk = this.clock();
  }

  /** Milliseconds until a held bulk unit may start regardless (0: now). */
  waitMs(): number {
    return this.mayStartBulk() ? 0 : Math.max(0, this.maxHoldMs - (this.clock() - this.lastBulk));
  }

  /** Calls `listener` whenever the last interactive work in flight ends. */
  onIdle(listener: () => void): void {
    this.listeners.add(listener);
  }

  get interactive(): number {
    return this.active;
  }
}
