/**
 * The head's helper thread. The main thread stays synchronous: it hands the helper the second half of the
 * rows through shared memory, does the first half itself, then blocks on Atomics.wait until the helper is
 * done. The helper runs the very same kernel functions (their source text), so there is no worker file to
 * resolve or transpile.
 */
import { Worker } from 'node:worker_threads';
import { backward4, forward4, passRows } from './kernels.js';

const CTRL_READY = 0;
const CTRL_CMD = 1;
const CTRL_DONE = 2;
const CTRL_FAILED = 3;

interface HelperData {
  ctrl: SharedArrayBuffer;
  x: SharedArrayBuffer;
  xByteOffset: number;
  xLength: number;
  xRow0: number;
  d: number;
  k: number;
  kp: number;
  i0: number;
  i1: number;
  y: SharedArrayBuffer;
  rowW: SharedArrayBuffer;
  wk: SharedArrayBuffer;
  bk: SharedArrayBuffer;
  gk: SharedArrayBuffer;
  out: SharedArrayBuffer;
}

/**
 * Body of the helper thread. It runs from its source text, so it may use no import nor outer name: the
 * kernel comes in as `pass` (a module's transpiler may rename imported names inside this function).
 */
function helperMain(wd: HelperData, pass: typeof passRows): void {
  const ctrl = new Int32Array(wd.ctrl);
  const x = new Float32Array(wd.x, wd.xByteOffset, wd.xLength);
  const y = new Int32Array(wd.y);
  const rowW = new Float64Array(wd.rowW);
  const wk = new Float64Array(wd.wk);
  const bk = new Float64Array(wd.bk);
  const gk = new Float64Array(wd.gk);
  const out = new Float64Array(wd.out);
  const rsum = new Float64Array(wd.kp);
  Atomics.store(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctrl, 1, seen);
    const cmd = Atomics.load(ctrl, 1);
    if (cmd < 0) return;
    seen = cmd;
    try {
      gk.fill(0);
      rsum.fill(0);
      out[0] = pass(x, wd.xRow0, wd.d, wd.k, wd.kp, y, rowW, wk, bk, wd.i0, wd.i1, gk, rsum, null);
      out.set(rsum, 1);
    } catch {
      Atomics.store(ctrl, 3, 1);
    }
    Atomics.store(ctrl, 2, cmd);
    Atomics.notify(ctrl, 2);
  }
}

export class HelperThread {
  private seq = 0;
  private constructor(
    private readonly worker: Worker,
    private readonly ctrl: Int32Array,
    readonly gk: Float64Array,
    readonly out: Float64Array,
  ) {}

  /** Starts a helper for rows [i0, i1); null when it does not come up (the caller then works alone). */
  static start(
    x: Float32Array,
    n: number,
    d: number,
    k: number,
    kp: number,
    i0: number,
    y: Int32Array,
    rowW: Float64Array,
    wk: Float64Array,
    bk: Float64Array,
  ): HelperThread | null {
    const ctrlBuf = new SharedArrayBuffer(16);
    const ctrl = new Int32Array(ctrlBuf);
    let xs: Float32Array;
    let xRow0: number;
    if (x.buffer instanceof SharedArrayBuffer) {
      xs = x;
      xRow0 = 0;
    } else {
      // Only the helper's rows are copied.
      xs = new Float32Array(new SharedArrayBuffer((n - i0) * d * 4));
      xs.set(x.subarray(i0 * d, n * d));
      xRow0 = i0;
    }
    const gk = new Float64Array(new SharedArrayBuffer(wk.byteLength));
    const out = new Float64Array(new SharedArrayBuffer((1 + kp) * 8));
    const data: HelperData = {
      ctrl: ctrlBuf,
      x: xs.buffer as SharedArrayBuffer,
      xByteOffset: xs.byteOffset,
      xLength: xs.length,
      xRow0,
      d,
      k,
      kp,
      i0,
      i1: n,
      y: y.buffer as SharedArrayBuffer,
      rowW: rowW.buffer as SharedArrayBuffer,
      wk: wk.buffer as SharedArrayBuffer,
      bk: bk.buffer as SharedArrayBuffer,
      gk: gk.buffer as SharedArrayBuffer,
      out: out.buffer as SharedArrayBuffer,
    };
    const source = [
      "'use strict';",
      "const { workerData } = require('node:worker_threads');",
      forward4.toString(),
      backward4.toString(),
      passRows.toString(),
      `(${helperMain.toString()})(workerData, passRows);`,
    ].join('\n');
    let worker: Worker;
    try {
      worker = new Worker(source, { eval: true, workerData: data });
    } catch {
      return null;
    }
    worker.unref();
    // Booting takes tens of milliseconds; a helper that is not up in 20 s is not coming.
    if (Atomics.wait(ctrl, CTRL_READY, 0, 20_000) === 'timed-out' && Atomics.load(ctrl, CTRL_READY) === 0) {
      void worker.terminate();
      return null;
    }
    return new HelperThread(worker, ctrl, gk, out);
  }

  /** Tells the helper to process its rows with the current shared weights. */
  post(): void {
    this.seq++;
    Atomics.store(this.ctrl, CTRL_CMD, this.seq);
    Atomics.notify(this.ctrl, CTRL_CMD);
  }

  /**
   * Blocks until the helper has finished; false if it failed. It does the same work as the main thread,
   * so one still silent 2 minutes after the main thread is done has died (e.g. out of memory).
   */
  wait(): boolean {
    const deadline = performance.now() + 120_000;
    while (Atomics.load(this.ctrl, CTRL_DONE) !== this.seq) {
      if (performance.now() > deadline) return false;
      Atomics.wait(this.ctrl, CTRL_DONE, Atomics.load(this.ctrl, CTRL_DONE), 1000);
    }
    return Atomics.load(this.ctrl, CTRL_FAILED) === 0;
  }

  stop(): void {
    Atomics.store(this.ctrl, CTRL_CMD, -1);
    Atomics.notify(this.ctrl, CTRL_CMD);
    void this.worker.terminate();
  }
}
