// The thread of an OnnxThreadSession (runtime.ts): owns one OnnxSession and runs it on request.
import { parentPort, workerData } from 'node:worker_threads';
import { HematoError } from '../../errors.js';
import { answerCalls } from '../../threads.js';
import { lowerThreadPriority } from '../../thread-priority.js';
import {
  OnnxSession,
  type SessionReady,
  type SessionRequest,
  type SessionResult,
  type SessionWorkerData,
} from './runtime.js';

const port = parentPort!;
const { model, threads, tuning } = workerData as SessionWorkerData;

async function load(): Promise<OnnxSession | null> {
  // Before the session exists: ONNX Runtime's intra-op threads inherit this thread's priority when it starts them.
  if (tuning.lowPriority) await lowerThreadPriority();
  try {
    return await OnnxSession.create(model, threads, tuning);
  } catch (e) {
    const ready: SessionReady = {
      error: e instanceof Error ? e.message : String(e),
      code: e instanceof HematoError ? e.code : 'bad_model',
    };
    port.postMessage(ready);
    return null;
  }
}

// Without a session the thread says why and ends; its parent terminates it.
const session = await load();
if (session) {
  // Close waits for the run before it: releasing a session mid-run would fail that run.
  let lastRun: Promise<unknown> = Promise.resolve();
  answerCalls<SessionRequest, SessionResult>(
    port,
    async (m) => {
      if ('close' in m) {
        await lastRun.catch(() => undefined);
        await session.close();
        return null;
      }
      const run = session.run(m.feeds, m.outputs);
      lastRun = run;
      const outputs = await run;
      // ORT's output arrays may view larger native buffers: send each as its own.
      for (const t of Object.values(outputs)) {
        if (t.data.byteOffset !== 0 || t.data.byteLength !== t.data.buffer.byteLength)
          t.data = t.data.slice();
      }
      return outputs;
    },
    (outputs) => Object.values(outputs ?? {}).map((t) => t.data.buffer as ArrayBuffer),
  );
  const ready: SessionReady = { inputNames: [...session.inputNames], outputNames: [...session.outputNames] };
  port.postMessage(ready);
}
