/**
 * At most `size` holders at once; the others wait in arrival order. Predict passes requests with test-time
 * augmentation (8× the network time) through a gate of one: four such requests then weigh on everyone else
 * like one, and the network's turns (model/classifier.ts) keep another client's single image at one turn's wait.
 */
export class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** Resolves when the caller may go on, with the function that lets the next one in (call it once). */
  async acquire(): Promise<() => void> {
    if (this.active < this.size) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }

  /** Holders now and callers waiting. */
  get load(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }
}
