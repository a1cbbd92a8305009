import { ModelError } from '../errors.js';
import { OUTPUTS } from './classifier-graph.js';
import type { DisagreementHeads } from './disagreement.js';
import { projectCenters, type FamiliarityReferences, type GaussianReference } from './familiarity.js';
import type { NeighbourReference } from './neighbours.js';
import onnxProto from 'onnx-proto';
import {
  GraphBuilder,
  halveFloatInitializers,
  readFloatInitializers,
  readInt64Initializers,
  readMetadata,
  readNodes,
} from './onnx/graph-builder.js';

const { onnx } = onnxProto;

export type { FamiliarityReferences } from './familiarity.js';

const BASE_OUTPUTS = [
  OUTPUTS.probabilities,
  OUTPUTS.logits,
  OUTPUTS.cam,
  OUTPUTS.features,
  OUTPUTS.featureMap,
];
const PREFIX = 'familiarity/';
/** The Mahalanobis part of `cell_distance` when disagreement shares the output (read back by readFamiliarity). */
const CELL_MAHALANOBIS = `${PREFIX}cell_mahalanobis`;
/** Added to the distance of a cell component that does not measure a row's lab: never the minimum. */
const LAB_MASKED = 1e30;

/** The same model without its familiarity outputs (what they cost is measured against it: scripts/bench.ts). */
export function withoutFamiliarity(model: Uint8Array): Uint8Array {
  return new GraphBuilder('hematovision_familiarity', 13, PREFIX).mergeInto(model, {
    keepOutputs: BASE_OUTPUTS,
  });
}

/**
 * Adds (or replaces) the familiarity outputs `cell_distance` and `image_distance` of a classifier model:
 * its nodes carry their own prefix, so a second call replaces the first and the head is left untouched.
 */
export function appendFamiliarity(model: Uint8Array, refs: FamiliarityReferences): Uint8Array {
  const meta = readMetadata(model);
  const d = (meta['hematovision.feature_dims'] ?? '').split(',').reduce((a, b) => a + Number(b), 0);
  const g = new GraphBuilder('hematovision_familiarity', 13, PREFIX);
  const columns = [refs.cell.columns, refs.image.columns, ...(refs.disagreement?.blocks ?? [])];
  if (!columns.every((c) => c[1] <= d))
    throw new ModelError('A familiarity reference reads past the features.', 'bad_model');
  // The labs' plain distances choose a row's lab (model/familiarity.ts nearestComponent); scaled, their minimum
  // is the image distance.
  const rawLabs = appendComponentDistances(g, OUTPUTS.features, refs.image, false);
  const labs = refs.image.scales
    ? g.op('Mul', [rawLabs, g.constant('scales', refs.image.scales, [refs.image.scales.length])])
    : rawLabs;
  g.op('ReduceMin', [labs], { axes: [1], keepdims: 0 }, OUTPUTS.imageDistance);
  const { disagreement: h, neighbours: nb } = refs;
  const nearest =
    h || nb || refs.cell.componentLab ? g.op('ArgMin', [rawLabs], { axis: 1, keepdims: 0 }) : '';
  const mahalanobisOut = h || nb ? CELL_MAHALANOBIS : OUTPUTS.cellDistance;
  if (!refs.cell.componentLab) appendReferenceDistance(g, OUTPUTS.features, refs.cell, mahalanobisOut);
  else {
    // Components of one lab measure only that lab's rows: the others get a distance too large to be the min.
    const own = refs.cell.componentLab;
    const nLabs = refs.image.components.length;
    if (own.some((l) => l >= nLabs))
      throw new ModelError('A cell component belongs to a lab the image reference lacks.', 'bad_model');
    const mask = Float32Array.from({ length: nLabs * own.length }, (_, i) => {
      const l = own[i % own.length];
      return l < 0 || l === Math.floor(i / own.length) ? 0 : LAB_MASKED;
    });
    const perComponent = appendComponentDistances(g, OUTPUTS.features, refs.cell);
    const masked = g.op('Add', [
      perComponent,
      g.op('Gather', [g.constant('labMask', mask, [nLabs, own.length]), nearest]),
    ]);
    g.op('ReduceMin', [masked], { axes: [1], keepdims: 0 }, mahalanobisOut);
  }
  if (h || nb) {
    const labCount = refs.image.components.length;
    if ((h && h.thresholds.length !== labCount) || (nb && nb.thresholds.length !== labCount))
      throw new ModelError('Per-lab thresholds do not match the training labs.', 'bad_model');
    // Each crop is judged by the threshold of the lab it looks most like, put on the Mahalanobis scale.
    const onCellScale = (score: string, name: string, thresholds: Float32Array, scale: number) => {
      const threshold = g.op('Gather', [g.constant(`${name}_thr`, thresholds, [thresholds.length]), nearest]);
      return g.op('Mul', [g.op('Div', [score, threshold]), g.scalar(`${name}_scale`, scale)]);
    };
    const parts = [CELL_MAHALANOBIS];
    if (h)
      parts.push(onCellScale(appendDisagreement(g, OUTPUTS.features, h), 'dis', h.thresholds, h.cellScale));
    if (nb)
      parts.push(onCellScale(appendNeighbours(g, OUTPUTS.features, nb), 'nb', nb.thresholds, nb.cellScale));
    g.op('Max', parts, {}, OUTPUTS.cellDistance);
  }
  g.output(OUTPUTS.cellDistance, ['N']);
  g.output(OUTPUTS.imageDistance, ['N']);
  return g.mergeInto(model, { keepOutputs: BASE_OUTPUTS });
}

/** Appends model/disagreement.ts's `disagreementOf` on the pooled `features` [N, D]: output [N]. */
export function appendDisagreement(g: GraphBuilder, features: string, h: DisagreementHeads): string {
  const probs = h.blocks.map(([start, end], i) => {
    const k = h.biases[i].length;
    const x = g.op('Slice', [
      features,
      g.int64s(`dis${i}_start`, [start]),
      g.int64s(`dis${i}_end`, [end]),
      g.int64s('axis', [1]),
    ]);
    const w = g.constant(`dis${i}_w`, h.weights[i], [k, end - start]);
    const logits = g.op('Gemm', [x, w, g.constant(`dis${i}_b`, h.biases[i], [k])], { transB: 1 });
    return g.op('Softmax', [logits], { axis: 1 });
  });
  const axes = g.int64s('axes', [1]);
  const pairs: string[] = [];
  for (let a = 0; a < probs.length; a++)
    for (let b = a + 1; b < probs.length; b++)
      pairs.push(
        g.op('ReduceSum', [g.op('Abs', [g.op('Sub', [probs[a], probs[b]])]), axes], { keepdims: 0 }),
      );
  const sum = pairs.length === 1 ? pairs[0] : g.op('Sum', pairs);
  return g.op('Div', [sum, g.scalar('pairs2', 2 * pairs.length)]);
}

/**
 * The same model with the nearest-cells check's stored cells and projection at half precision (cosines move
 * by about 1e-3, far below its thresholds' spacing): an int8 copy, whose file size matters, carries them so.
 * Apply after shiftFamiliarityMeans, which edits float constants. A model without the check is returned as is.
 */
export function halveNeighbours(model: Uint8Array): Uint8Array {
  const names = [`${PREFIX}nb_rows`, `${PREFIX}nb_w`];
  const floats = readFloatInitializers(model);
  return names.every((n) => floats.has(n)) && readNodes(model).every((n) => !n.outputs.includes(names[0]))
    ? halveFloatInitializers(model, names)
    : model;
}

/** Appends model/neighbours.ts's `neighbourDistance` on the pooled `features` [N, D]: output [N]. */
export function appendNeighbours(g: GraphBuilder, features: string, nb: NeighbourReference): string {
  const r = nb.bias.length;
  const D = nb.weight.length / r;
  const m = nb.rows.length / r;
  // Sliced like the other parts, so shiftFamiliarityMeans finds this projection as it finds the heads.
  const x = g.op('Slice', [
    features,
    g.int64s('nb_start', [0]),
    g.int64s('nb_end', [D]),
    g.int64s('axis', [1]),
  ]);
  const p = g.op('Gemm', [x, g.constant('nb_w', nb.weight, [r, D]), g.constant('nb_b', nb.bias, [r])], {
    transB: 1,
  });
  const norm = g.op('Sqrt', [g.op('ReduceSumSquare', [p], { axes: [1], keepdims: 1 })]);
  const unit = g.op('Div', [p, g.op('Max', [norm, g.scalar('nb_eps', 1e-12)])]);
  const rowsT = new Float32Array(r * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) rowsT[j * m + i] = nb.rows[i * r + j];
  const similarity = g.op('MatMul', [unit, g.constant('nb_rows', rowsT, [r, m])]); // [N, M]
  const [top] = g.node('TopK', [similarity, g.int64s('nb_k', [nb.k])], { axis: 1, largest: 1, sorted: 1 }, 2);
  const kth = g.op('ReduceMin', [top], { axes: [1], keepdims: 0 });
  return g.op('Sub', [g.scalar('one', 1), kth]);
}

/**
 * Appends the distance of model/familiarity.ts's `referenceDistance` to a graph that has the backbone's
 * pooled `features` [N, D]: output [N], the squared Mahalanobis distance to the nearest centre over the
 * dimension. Differences are taken before squaring ([N, c, d] is small), not expanded as ‖x‖² − 2x·μ + ‖μ‖²,
 * whose float32 cancellation would blur the small distances that matter most.
 */
export function appendReferenceDistance(
  g: GraphBuilder,
  features: string,
  ref: GaussianReference,
  output: string,
): string {
  const perComponent = appendComponentDistances(g, features, ref);
  return g.op('ReduceMin', [perComponent], { axes: [1], keepdims: 0 }, output);
}

/** The distance to every centre, [N, c] (model/familiarity.ts's `componentDistances`, scaled or not). */
export function appendComponentDistances(
  g: GraphBuilder,
  features: string,
  ref: GaussianReference,
  withScales = true,
): string {
  const [start, end] = ref.columns;
  const d = end - start;
  const c = ref.components.length;
  const m = ref.invSqrtEig.length;
  const x = g.op('Slice', [
    features,
    g.int64s('start', [start]),
    g.int64s('end', [end]),
    g.int64s('axis', [1]),
  ]);
  const z = g.op('Div', [
    g.op('Sub', [x, g.constant('mean', ref.mean, [d])]),
    g.constant('std', ref.std, [d]),
  ]);
  const z3 = g.op('Unsqueeze', [z, g.int64s('axis', [1])]); // [N, 1, d]
  const diff = g.op('Sub', [z3, g.constant('centers', ref.centers, [1, c, d])]); // [N, c, d]
  const total = g.op('ReduceSumSquare', [diff], { axes: [2], keepdims: 0 }); // [N, c]
  const proj = g.op('MatMul', [diff, g.constant('basis', ref.basis, [d, m])]); // [N, c, m]
  const projected = g.op('ReduceSumSquare', [proj], { axes: [2], keepdims: 0 });
  const scaled = g.op('Mul', [proj, g.constant('invSqrtEig', ref.invSqrtEig, [m])]);
  const principal = g.op('ReduceSumSquare', [scaled], { axes: [2], keepdims: 0 });
  const residual = g.op('Relu', [g.op('Sub', [total, projected])]);
  const sum = g.op('Add', [principal, g.op('Div', [residual, g.scalar('resVar', ref.residualVariance)])]);
  const perDim = g.op('Div', [sum, g.scalar('dim', d)]);
  return withScales && ref.scales ? g.op('Mul', [perDim, g.constant('scales', ref.scales, [c])]) : perDim;
}

/**
 * The same model with each familiarity reference's feature mean moved by `shift` (one value per feature
 * column): for a copy of the model whose features are offset from those the references were fitted on by
 * a known average (an int8 copy), so its distances stay on the scale of the card's thresholds.
 */
export function shiftFamiliarityMeans(model: Uint8Array, shift: Float32Array): Uint8Array {
  const m = onnx.ModelProto.decode(model);
  const graph = m.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const consumerOf = (op: string) =>
    new Map((graph.node ?? []).filter((n) => n.opType === op).map((n) => [n.input?.[0], n]));
  const subOf = consumerOf('Sub');
  const gemmOf = consumerOf('Gemm');
  const int64At = (name: string | undefined) => {
    const raw = inits.get(name ?? '')?.rawData;
    if (!raw) throw new ModelError('Unexpected familiarity graph.', 'bad_model');
    return Number(new BigInt64Array(new Uint8Array(raw).slice().buffer)[0]);
  };
  const floatsOf = (t: onnxProto.onnx.ITensorProto) =>
    new Float32Array(new Uint8Array(t.rawData!).slice().buffer);
  let shifted = 0;
  for (const n of graph.node ?? []) {
    if (n.opType !== 'Slice' || !n.name?.startsWith(PREFIX) || n.input?.[0] !== OUTPUTS.features) continue;
    const start = int64At(n.input[1]);
    const sub = subOf.get(n.output?.[0]);
    const gemm = gemmOf.get(n.output?.[0]);
    if (sub) {
      // A reference: its standardising mean moves with the features.
      const mean = inits.get(sub.input?.[1] ?? '');
      if (!mean?.rawData) throw new ModelError('Unexpected familiarity graph.', 'bad_model');
      const values = floatsOf(mean);
      for (let j = 0; j < values.length; j++) values[j] += shift[start + j];
      mean.rawData = new Uint8Array(values.buffer);
    } else if (gemm) {
      // A disagreement head (logits = x·Wᵀ + b): b − W·shift gives the shifted features the same logits.
      const w = inits.get(gemm.input?.[1] ?? '');
      const b = inits.get(gemm.input?.[2] ?? '');
      if (!w?.rawData || !b?.rawData) throw new ModelError('Unexpected familiarity graph.', 'bad_model');
      const weight = floatsOf(w);
      const bias = floatsOf(b);
      const d = weight.length / bias.length;
      for (let c = 0; c < bias.length; c++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += weight[c * d + j] * shift[start + j];
        bias[c] -= s;
      }
      b.rawData = new Uint8Array(bias.buffer);
    } else throw new ModelError('Unexpected familiarity graph.', 'bad_model');
    shifted++;
  }
  if (shifted === 0) throw new ModelError('The model has no familiarity references to shift.', 'bad_model');
  return onnx.ModelProto.encode(m).finish();
}

/**
 * The same model with the block heads' and the nearest cells' `cellScale` set anew (each given, the check
 * present): what puts their values on the Mahalanobis threshold's scale when that threshold moves (an int8
 * copy, training/int8.ts).
 */
export function setCellScales(
  model: Uint8Array,
  scales: { disagreement?: number; neighbours?: number },
): Uint8Array {
  const m = onnx.ModelProto.decode(model);
  const inits = new Map((m.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const [name, value] of [
    ['dis_scale', scales.disagreement],
    ['nb_scale', scales.neighbours],
  ] as const) {
    if (value === undefined) continue;
    const t = inits.get(PREFIX + name);
    if (!t?.rawData) throw new ModelError(`The model has no familiarity constant '${name}'.`, 'bad_model');
    t.rawData = new Uint8Array(Float32Array.of(value).buffer);
  }
  return onnx.ModelProto.encode(m).finish();
}

/**
 * The references a model file holds, read back from the constants appendReferenceDistance wrote (names are
 * the card's: the file keeps numbers only); null for a model without familiarity outputs.
 */
export function readFamiliarity(
  model: Uint8Array,
  names: { cell: string[]; image: string[] },
): FamiliarityReferences | null {
  const nodes = readNodes(model);
  if (!nodes.some((n) => n.outputs.includes(OUTPUTS.imageDistance))) return null;
  const floats = readFloatInitializers(model);
  const ints = readInt64Initializers(model);
  const read = (output: string, components: string[]): GaussianReference => {
    // Walk up from the output through the familiarity nodes, collecting their constants by base name.
    const consts = new Map<string, string>();
    const todo = [output];
    const seen = new Set<string>();
    while (todo.length > 0) {
      const t = todo.pop()!;
      if (seen.has(t)) continue;
      seen.add(t);
      if (t.startsWith(PREFIX) && (floats.has(t) || ints.has(t)))
        consts.set(t.slice(PREFIX.length).replace(/_\d+$/, ''), t);
      const n = nodes.find((x) => x.outputs.includes(t));
      // The nearest lab (ArgMin) is the image reference's: its constants are not this reference's.
      if (n && n.opType !== 'ArgMin' && (t === output || t.startsWith(PREFIX))) todo.push(...n.inputs);
    }
    const f = (k: string) => {
      const v = floats.get(consts.get(k) ?? '');
      if (!v) throw new ModelError(`The model's familiarity reference has no '${k}'.`, 'bad_model');
      return v;
    };
    const i = (k: string) => ints.get(consts.get(k) ?? '')?.[0] ?? NaN;
    const [start, end] = [i('start'), i('end')];
    const d = end - start;
    const centers = f('centers');
    const basis = f('basis');
    const invSqrtEig = f('invSqrtEig');
    const m = invSqrtEig.length;
    const c = centers.length / d;
    if (!(d > 0) || c !== components.length || basis.length !== d * m)
      throw new ModelError("The model's familiarity reference does not match its card.", 'bad_model');
    return {
      columns: [start, end],
      mean: f('mean'),
      std: f('std'),
      components,
      centers,
      basis,
      invSqrtEig,
      centerProjections: projectCenters(centers, basis, c, d, m),
      residualVariance: f('resVar')[0],
      ...(consts.has('scales') ? { scales: f('scales') } : {}),
      ...(consts.has('labMask') ? { componentLab: labsOfMask(f('labMask'), c) } : {}),
    };
  };
  const combined = nodes.some((n) => n.outputs.includes(CELL_MAHALANOBIS));
  const cell = read(combined ? CELL_MAHALANOBIS : OUTPUTS.cellDistance, names.cell);
  const image = read(OUTPUTS.imageDistance, names.image);
  return {
    cell,
    image,
    ...(floats.has(`${PREFIX}dis_thr`) && { disagreement: readDisagreement(floats, ints) }),
    ...(floats.has(`${PREFIX}nb_thr`) && { neighbours: readNeighbours(floats, ints) }),
  };
}

/** The stored cells appendNeighbours wrote, read back by their constants' names. */
function readNeighbours(floats: Map<string, Float32Array>, ints: Map<string, number[]>): NeighbourReference {
  const get = (name: string) => {
    const v = floats.get(PREFIX + name);
    if (!v) throw new ModelError(`The model's neighbour reference has no '${name}'.`, 'bad_model');
    return v;
  };
  const bias = get('nb_b');
  const r = bias.length;
  const rowsT = get('nb_rows');
  const m = rowsT.length / r;
  const rows = new Float32Array(m * r);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) rows[i * r + j] = rowsT[j * m + i];
  return {
    weight: get('nb_w'),
    bias,
    rows,
    k: ints.get(`${PREFIX}nb_k`)?.[0] ?? NaN,
    thresholds: get('nb_thr'),
    cellScale: get('nb_scale')[0],
  };
}

/** The disagreement heads appendDisagreement wrote, read back by their constants' names. */
function readDisagreement(floats: Map<string, Float32Array>, ints: Map<string, number[]>): DisagreementHeads {
  const get = (name: string) => {
    const v = floats.get(PREFIX + name);
    if (!v) throw new ModelError(`The model's disagreement heads have no '${name}'.`, 'bad_model');
    return v;
  };
  const blocks: [number, number][] = [];
  for (let i = 0; ints.has(`${PREFIX}dis${i}_start`); i++)
    blocks.push([ints.get(`${PREFIX}dis${i}_start`)![0], ints.get(`${PREFIX}dis${i}_end`)![0]]);
  return {
    blocks,
    weights: blocks.map((_, i) => get(`dis${i}_w`)),
    biases: blocks.map((_, i) => get(`dis${i}_b`)),
    thresholds: get('dis_thr'),
    cellScale: get('dis_scale')[0],
  };
}

/** The componentLab of a cell reference from its graph mask ([labs, c]: 0 where a component measures a lab). */
function labsOfMask(mask: Float32Array, c: number): Int32Array {
  const labs = mask.length / c;
  return Int32Array.from({ length: c }, (_, j) => {
    const open = Array.from({ length: labs }, (_, l) => l).filter((l) => mask[l * c + j] === 0);
    return open.length === labs ? -1 : (open[0] ?? -1);
  });
}
