/**
 * Fine-tuning micro-benchmark (not part of the test suite): ms per image at batch 16, 224², for the forward
 * pass, a full-network training step (forward + backward + AdamW) and training from block 13 on (frozen
 * prefix included, both as one graph and as a separate prefix graph). Ratios compare numbers from this run.
 *
 *   npx tsx scripts/bench-finetune.ts [--batch 16] [--repeats 5] [--threads 2] [--spin] [--only full|13]
 *
 * Every session runs with the same thread settings; ORT's thread spinning is off unless --spin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { loadTfliteBackbone, mobileNetV2Spec } from '../src/model/backbone.js';
import { buildInferenceGraph } from '../src/model/net/forward.js';
import { featureDim } from '../src/model/net/spec.js';
import { OnnxSession } from '../src/model/onnx/runtime.js';
import { type TrainingGraphOptions } from '../src/model/training-graph/graphs.js';
import { TrainingSession } from '../src/model/training-graph/session.js';
import { seededRandom } from '../src/model/training-graph/test-net.js';
import { TFLITE } from '../src/testing/shared.js';
import { AdamW, parametersFrom } from '../src/training/optimizer.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const n = arg('batch', 16);
const repeats = arg('repeats', 5);
const spin = process.argv.includes('--spin');
const threads = arg('threads', 2);
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;

if (!existsSync(TFLITE)) {
  console.error(`Needs ${TFLITE} (../shared beside the repository).`);
  process.exit(1);
}
const k = 4;
const spec = mobileNetV2Spec(loadTfliteBackbone(readFileSync(TFLITE)), { classes: k });
const rand = seededRandom(1);
spec.head.weight.forEach((_, i, w) => (w[i] = (rand() - 0.5) * 0.02));
const images = Float32Array.from({ length: n * 3 * 224 * 224 }, () => 2 * rand() - 1);
const targets = new Float32Array(n * k);
for (let b = 0; b < n; b++) targets[b * k + (b % k)] = 1;

/** Median ms per image over `repeats` runs, after two warm-up runs (ORT's arena settles on the second). */
async function time(run: () => Promise<unknown>): Promise<number> {
  await run();
  await run();
  const ms: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await run();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)] / n;
}

const load = () => loadavg()[0].toFixed(1);
console.log(`load average ${load()} (2 cores: other work on the machine inflates every number below)`);
console.log(
  `batch ${n}, ${repeats} repeats, ${threads} threads${spin ? ', spinning' : ''}, features ${featureDim(spec)}`,
);
const forwardSession = await OnnxSession.create(buildInferenceGraph(spec), threads, { spin });
const forward = await time(() =>
  forwardSession.run({ input: { data: images, dims: [n, 3, 224, 224] } }, ['logits']),
);
await forwardSession.close();
console.log(`forward only                  ${forward.toFixed(1)} ms/img`);

async function trainStep(label: string, options: TrainingGraphOptions) {
  const session = await TrainingSession.create(spec, { ...options, threads, spin });
  const opt = new AdamW(parametersFrom(session.trainable));
  let optMs = 0;
  const perImg = await time(async () => {
    const r = await session.step({ images, n, targets });
    const t0 = performance.now();
    opt.step(r.grads, 1e-9); // tiny lr: the weights stay (almost) as they are across repeats
    optMs = performance.now() - t0;
  });
  const rss = (process.memoryUsage().rss / 2 ** 30).toFixed(1);
  await session.close();
  console.log(
    `${label.padEnd(30)}${perImg.toFixed(1)} ms/img  (${(perImg / forward).toFixed(2)}× forward; ` +
      `AdamW ${(optMs / n).toFixed(2)} ms/img; RSS ${rss} GiB)`,
  );
}

if (!only || only === 'full') {
  await trainStep('full network step', { trainFromBlock: 0, batchSize: n });
  await trainStep('full, dynamic batch', { trainFromBlock: 0 });
}
if (!only || only === '13') {
  await trainStep('from block 13, one graph', { trainFromBlock: 13, frozenPrefix: 'inline', batchSize: n });
  await trainStep('from block 13, prefix graph', {
    trainFromBlock: 13,
    frozenPrefix: 'separate',
    batchSize: n,
  });
}
console.log(`load average at the end ${load()}`);
