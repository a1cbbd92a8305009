/**
 * Times the softmax head on synthetic "backbone-like" features: non-negative (ReLU), correlated through
 * a rank-4 latent factor, per-feature scales 0.2–2.2, class means a little apart, so the problem is
 * learnable but not separable (≈ 75% train / 68% held-out accuracy at the defaults).
 *
 *   npx tsx scripts/bench-head.ts [n=40000] [d=2192] [k=4] [l2=1e-3] [threads=2]
 */
import { fitSoftmaxHead, scoreHead } from '../src/training/head.js';
import { createRng as rng } from '../src/imaging/random.js';

const [n, d, k] = [40000, 2192, 4].map((v, i) => Number(process.argv[2 + i] ?? v));
const l2 = Number(process.argv[5] ?? 1e-3);
const threads = Number(process.argv[6] ?? 2);

const rand = rng(1);
const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

const L = 4;
const mu = Float32Array.from({ length: k * d }, () => 0.5 + 0.03 * normal());
const A = Float32Array.from({ length: L * d }, () => 0.5 * normal());
const scale = Float32Array.from({ length: d }, () => 0.2 + 2 * rand());
function sample(rows: number) {
  const x = new Float32Array(rows * d);
  const y = new Int32Array(rows);
  const h = new Float64Array(L);
  for (let i = 0; i < rows; i++) {
    const c = Math.floor(rand() * k);
    y[i] = c;
    for (let l = 0; l < L; l++) h[l] = normal();
    for (let j = 0; j < d; j++) {
      let v = mu[c * d + j] + 0.8 * normal();
      for (let l = 0; l < L; l++) v += A[l * d + j] * h[l];
      x[i * d + j] = Math.max(0, v) * scale[j];
    }
  }
  return { x, y };
}

const t0 = performance.now();
const train = sample(n);
const val = sample(Math.max(1000, Math.round(n / 10)));
console.log(`data: n=${n} d=${d} k=${k} generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const cpu0 = process.cpuUsage();
const fit = fitSoftmaxHead(train.x, n, d, train.y, k, {
  l2,
  threads,
  onProgress: (iter, loss, gmax) => {
    if (iter % 20 === 0)
      console.log(`  iter ${iter}  loss ${loss.toFixed(6)}  max|grad| ${gmax.toExponential(2)}`);
  },
});
const cpu = process.cpuUsage(cpu0);
const tr = scoreHead(fit.head, { x: train.x, n, y: train.y });
const va = scoreHead(fit.head, { x: val.x, n: val.x.length / d, y: val.y });
console.log(
  `head: ${fit.seconds.toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU, ` +
    `${fit.threads} thread(s), ${fit.iterations} iterations, ${fit.evaluations} evaluations (${fit.reason})`,
);
console.log(
  `accuracy: train ${(100 * tr.accuracy).toFixed(1)}%, held-out ${(100 * va.accuracy).toFixed(1)}%`,
);
