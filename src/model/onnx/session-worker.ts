// The thread of an OnnxThreadSession (runtime.ts): owns one OnnxSession and runs it on request.
import { parentPort, workerData } from 'node:worker_threads';
import { HematoError } from '../../errors.js';
import { OnnxSession, type SessionReply, type SessionRequest, type SessionWorkerData } from './runtime.js';

const port = parentPort!;
const { model, threads, tuning } = workerData as SessionWorkerData;

const fault = (e: unknown) => ({
  error: e instanceof Error ? e.message : String(e),
  code: e instanceof HematoError ? e.code : 'model_error',
});

try {
  const session = await OnnxSession.create(model, threads, tuning);
  port.on('message', (m: SessionRequest) => {
    void (async () => {
      let reply: SessionReply;
      let transfer: ArrayBuffer[] = [];
      try {
        if ('close' in m) {
          await session.close();
          reply = { id: m.id };
        } else {
          const outputs = await session.run(m.feeds, m.outputs);
          // ORT's output arrays may view larger native buffers: send each as its own.
          for (const t of Object.values(outputs)) {
            if (t.data.byteOffset !== 0 || t.data.byteLength !== t.data.buffer.byteLength)
              t.data = t.data.slice();
          }
          reply = { id: m.id, outputs };
          transfer = Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer);
        }
      } catch (e) {
        reply = { id: m.id, ...fault(e) };
      }
      port.postMessage(reply, transfer);
    })();
  });
  port.postMessage({ inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
} catch (e) {
  port.postMessage(fault(e));
}
