/**
 * The one file that knows onnxruntime-web: loads the wasm runtime from our own server (a hashed asset of the
 * build, never a CDN) and runs the classifier graph. Threads only when the page is cross-origin isolated
 * (SharedArrayBuffer needs it); otherwise one thread.
 */
import * as ort from 'onnxruntime-web/wasm';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
// The runtime's own loader as a separate file: its worker threads start from it (started from our bundle,
// they would run the whole app in a worker).
import mjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.mjs?url';

let configured = false;

function configure(): void {
  if (configured) return;
  configured = true;
  ort.env.wasm.wasmPaths = {
    wasm: new URL(wasmUrl, document.baseURI).href,
    mjs: new URL(mjsUrl, document.baseURI).href,
  };
  // `?ortThreads=n` in the page address overrides the choice (for benchmarks: scripts/bench-device.ts).
  const asked = Number(new URLSearchParams(location.search).get('ortThreads'));
  ort.env.wasm.numThreads = !globalThis.crossOriginIsolated
    ? 1
    : Number.isInteger(asked) && asked > 0
      ? asked
      : Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
  // The model is small and one image at a time: the proxy worker would only add a copy.
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
}

export interface RunResult {
  [name: string]: Float32Array;
}

/** A loaded model: run NCHW float32 input rows, read the named outputs. */
export interface WebSession {
  readonly outputNames: readonly string[];
  readonly threads: number;
  run(input: Float32Array, dims: number[], outputs: string[]): Promise<RunResult>;
}

export async function createSession(model: Uint8Array): Promise<WebSession> {
  configure();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  return {
    outputNames: session.outputNames,
    threads: ort.env.wasm.numThreads ?? 1,
    async run(input, dims, outputs) {
      const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, dims) };
      const res = await session.run(feeds, outputs);
      const out: RunResult = {};
      for (const name of outputs) {
        out[name] = res[name].data as Float32Array;
        res[name].dispose();
      }
      return out;
    },
  };
}
