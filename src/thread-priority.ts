/**
 * Bulk work on low-priority threads (issue 15, fairness under abuse). On 2 cores, a bomb's decoding or a
 * test-time-augmentation run holds one core while another client's photo is served on the other; the queues
 * already put interactive work first, but once a bulk unit runs, the kernel shares the cores evenly. A thread
 * that only ever runs bulk work lowers its own priority here, so the scheduler gives the cores to the
 * interactive threads first (main event loop, the interactive network and preparation threads) and to the bulk
 * threads whatever is left.
 *
 * Linux only. There each thread is its own task: setpriority(PRIO_PROCESS, 0, n), which os.setPriority(0, n)
 * calls, renices the calling thread alone, and threads it creates later (ONNX Runtime's intra-op pool) inherit
 * its value. Elsewhere it would be the whole process: macOS applies it to every thread, Windows maps it to the
 * process's priority class, so the interactive threads would slow down with the bulk ones; there this does
 * nothing. One-way: an unprivileged thread may lower its priority but never raise it back, so a thread is
 * either bulk for its whole life or never lowered.
 */
import { stat } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import { isMainThread } from 'node:worker_threads';

/**
 * The nice value of bulk threads. Against a thread at 0, the kernel's weights (1024 : 110) give a bulk thread
 * about a tenth of a contended core: interactive work barely notices it, and bulk work still progresses on a
 * machine that is never idle (19 would all but stop it behind any other process).
 */
export const BULK_NICE = 10;

/**
 * Lowers the calling worker thread's priority to `nice` (never raises it: a thread already lower stays so).
 * Resolves whether the thread now runs at `nice` or lower; false on the main thread (it would slow the event
 * loop that serves everyone), off Linux, or when the system refuses.
 */
export async function lowerThreadPriority(nice = BULK_NICE): Promise<boolean> {
  if (isMainThread || process.platform !== 'linux') return false;
  // libuv's thread pool (file system, sharp's pipelines) is shared by every thread of the process, and its
  // threads inherit the nice value of the thread that happens to start them. Use it once before lowering, so a
  // low-priority thread is never the one that starts it and the pool stays at normal priority for everyone.
  await stat(process.execPath).catch(() => undefined);
  try {
    if (getPriority(0) < nice) setPriority(0, nice);
    return getPriority(0) >= nice;
  } catch {
    return false;
  }
}

/** One thread as the kernel sees it. */
export interface ThreadStat {
  nice: number;
  /** CPU time used so far (user and system), in clock ticks (usually 1/100 s). */
  cpuTicks: number;
}

/**
 * Linux: every thread of this process by thread id, from /proc/self/task/<tid>/stat (fields 14–15 and 19);
 * empty elsewhere. For tests and diagnostics.
 */
export async function threadStats(): Promise<Map<number, ThreadStat>> {
  const out = new Map<number, ThreadStat>();
  if (process.platform !== 'linux') return out;
  const { readdir, readFile } = await import('node:fs/promises');
  for (const tid of await readdir('/proc/self/task')) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
    // Field 2 (comm) is in parentheses and may hold spaces: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime and stime (14, 15) are fields[11] and [12], nice (19) fields[16].
    if (fields.length > 16)
      out.set(Number(tid), { nice: Number(fields[16]), cpuTicks: Number(fields[11]) + Number(fields[12]) });
  }
  return out;
}
