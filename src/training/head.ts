/**
 * The classification head: multinomial logistic regression (softmax regression) on cached backbone
 * features, trained full-batch with L-BFGS in Float64.
 *
 * Objective, in the space of standardised features s = (x − mean) / std:
 *   L(W, b) = Σ_i w_i · CE(softmax(W s_i + b), y_i) / Σ_i w_i  +  (l2 / 2)·‖W‖²   (bias not penalised)
 * Because the data term is a weighted mean, a sample weight of 2 is the same as a duplicated row, and
 * `l2` does not need rescaling when n changes. Mean and std are weighted the same way (population std;
 * a constant feature gets std 1).
 *
 * Speed: features are never standardised in memory. Each pass folds the standardisation into the
 * weights (W/std, b − W·mean/std), works on the raw Float32 rows, and unfolds the gradient. The inner
 * loops take 4 rows × 4 classes at a time (16 accumulators), which keeps the weights in registers and
 * roughly doubles throughput over a row-at-a-time loop (V8 emits scalar SSE: this is near its limit).
 * Classes are padded to a multiple of 4. Large problems split the rows with one helper thread.
 *
 * The parts live in head/: kernels (the unrolled passes), helper-thread, objective, fit and select-l2.
 */
export {
  DEFAULT_MAX_ITER,
  DEFAULT_TOL,
  fitSoftmaxHead,
  foldedLogits,
  foldStandardisation,
  headLogits,
  trainSoftmaxHead,
  type HeadFit,
  type LinearHead,
  type TrainHeadOptions,
} from './head/fit.js';
export { createSoftmaxObjective, type SoftmaxObjective } from './head/objective.js';
export {
  DEFAULT_L2_GRID,
  scoreHead,
  selectL2,
  type HeadData,
  type L2Score,
  type SelectL2Options,
} from './head/select-l2.js';
