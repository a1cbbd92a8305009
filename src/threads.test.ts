import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { HematoError } from './errors.js';
import { LazyWorker, WorkerCalls } from './threads.js';

// A worker speaking the WorkerCalls protocol by hand: doubles a number, fails on 'bad', dies on 'die'.
const source = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ id, request }) => {
  if (request === 'die') process.exit(3);
  if (request === 'bad') return parentPort.postMessage({ id, error: 'not a number', code: 'nan' });
  setTimeout(() => parentPort.postMessage({ id, result: request * 2 }), 5 * (3 - request));
});
`;

function calls(): WorkerCalls<number | string, number> {
  return new WorkerCalls(new Worker(source, { eval: true }), {
    failed: (message, code) => new HematoError(`failed: ${message}`, code ?? 'x'),
    died: (reason) => new HematoError(`died: ${reason}`, 'died'),
  });
}

describe('WorkerCalls', () => {
  it('settles each call with its own reply, whatever order the replies come in', async () => {
    const c = calls();
    expect(await Promise.all([1, 2, 3].map((n) => c.call(n)))).toEqual([2, 4, 6]);
    await c.close(new Error('closed'));
  });

  it('turns an error reply into the caller’s error, and keeps working', async () => {
    const c = calls();
    await expect(c.call('bad')).rejects.toMatchObject({ message: 'failed: not a number', code: 'nan' });
    expect(await c.call(5)).toBe(10);
    await c.close(new Error('closed'));
  });

  it('rejects the calls in flight and every later call once the worker dies', async () => {
    const c = calls();
    const inFlight = expect(c.call(1)).rejects.toMatchObject({ code: 'died' });
    await expect(c.call('die')).rejects.toMatchObject({
      code: 'died',
      message: 'died: it exited with code 3',
    });
    await inFlight;
    await expect(c.call(2)).rejects.toMatchObject({ code: 'died' });
  });

  it('rejects the calls in flight and refuses later ones after close', async () => {
    const c = calls();
    const inFlight = expect(c.call(2)).rejects.toMatchObject({ code: 'closed' });
    await c.close(new HematoError('closed', 'closed'));
    await inFlight;
    await expect(c.call(1)).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('LazyWorker', () => {
  function lazy(): { thread: LazyWorker<number | string, number>; started: () => number } {
    let started = 0;
    const thread = new LazyWorker<number | string, number>(
      () => {
        started++;
        return new Worker(source, { eval: true });
      },
      {
        failed: (message, code) => new HematoError(`failed: ${message}`, code ?? 'x'),
        died: (reason) => new HematoError(`died: ${reason}`, 'died'),
        closed: () => new HematoError('closed', 'closed'),
      },
    );
    return { thread, started: () => started };
  }

  it('starts its thread on the first call and shares it between calls', async () => {
    const { thread, started } = lazy();
    expect(started()).toBe(0);
    expect(await Promise.all([1, 2].map((n) => thread.call(n)))).toEqual([2, 4]);
    expect(await thread.call(3)).toBe(6);
    expect(started()).toBe(1);
    await thread.close();
  });

  it('replaces a thread that died on the next call', async () => {
    const { thread, started } = lazy();
    await expect(thread.call('die')).rejects.toMatchObject({ code: 'died' });
    expect(await thread.call(4)).toBe(8);
    expect(started()).toBe(2);
    await thread.close();
  });

  it('refuses calls once closed, and a closed thread that was never started stays unstarted', async () => {
    const { thread, started } = lazy();
    await thread.close();
    await expect(thread.call(1)).rejects.toMatchObject({ code: 'closed' });
    expect(started()).toBe(0);
  });
});
