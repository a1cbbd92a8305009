import onnxProto from 'onnx-proto';
import { fromFloat16, toFloat16 } from './float16.js';

const { onnx } = onnxProto;

/** ONNX element types this project writes. */
export const DType = { float: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10 } as const;
export type DTypeName = keyof typeof DType;

/** Marks a number attribute as FLOAT even when it happens to be whole (e.g. alpha = 1). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const float = (v: number): FloatAttr => new FloatAttr(v);

export type AttrValue = number | number[] | string | FloatAttr | FloatAttr[];
export type Dim = number | string;

type TypedData = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

/**
 * Builds an ONNX graph node by node. Shared by the backbone importer, the classifier export and the
 * training-graph builder, so every graph we ship is written one way.
 */
export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly inits: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly used = new Set<string>();
  private counter = 0;
  /** Prepended to node names (not tensor names) while set, so a profile can tell which part a node belongs to. */
  nodeScope = '';

  constructor(
    readonly name: string,
    readonly opset = 13,
    /** Prepended to every generated name, so a sub-graph merged into another model can be found again. */
    readonly namePrefix = '',
  ) {}

  /** A fresh tensor name with the given prefix. */
  fresh(prefix: string): string {
    prefix = this.namePrefix + prefix;
    let n = prefix;
    while (this.used.has(n)) n = `${prefix}_${++this.counter}`;
    this.used.add(n);
    return n;
  }

  input(name: string, dims: Dim[], type: DTypeName = 'float'): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, dims, type));
    return name;
  }

  output(name: string, dims: Dim[], type: DTypeName = 'float'): string {
    this.outputs.push(valueInfo(name, dims, type));
    return name;
  }

  /** A constant tensor stored in the graph. */
  constant(prefix: string, data: TypedData, dims: number[]): string {
    const name = this.fresh(prefix);
    this.inits.push(tensorProto(name, data, dims));
    return name;
  }

  /** A 1-D int64 constant, as ONNX wants for shapes, axes and slice bounds. */
  int64s(prefix: string, values: number[]): string {
    return this.constant(prefix, BigInt64Array.from(values.map((v) => BigInt(v))), [values.length]);
  }

  scalar(prefix: string, value: number): string {
    return this.constant(prefix, Float32Array.of(value), []);
  }

  /** Adds a node and returns its output names (fresh ones unless `outputs` are given). */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs: string[] | number = 1,
  ): string[] {
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : outputs.map((o) => (this.used.add(o), o));
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outs,
        name: this.fresh(`${this.nodeScope}node_${opType}`),
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outs;
  }

  /** One-output shorthand for `node`. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.node(opType, inputs, attrs, output ? [output] : 1)[0];
  }

  /** Serialises the model; `metadata` lands in metadata_props. */
  toBytes(options: { producer?: string; doc?: string; metadata?: Record<string, string> } = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: options.producer ?? 'hematovision',
      docString: options.doc ?? '',
      opsetImport: [{ domain: '', version: this.opset }],
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: onnx.GraphProto.create({
        name: this.name,
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /**
   * Appends this builder's nodes, constants and outputs to an existing model. Nodes and constants of the base
   * whose names start with this builder's prefix are removed first (replacing an earlier head), and only the
   * base outputs named in `keepOutputs` stay.
   */
  mergeInto(
    base: Uint8Array,
    options: {
      keepOutputs: string[];
      metadata?: Record<string, string>;
      doc?: string;
      /**
       * Base tensors renamed where they are produced (old → new), so this builder's nodes can read them
       * under the new name and produce the old one, slipping an operation in between. The nodes are then
       * put back in topological order.
       */
      renameOutputs?: Map<string, string>;
    },
  ): Uint8Array {
    const model = onnx.ModelProto.decode(base);
    const graph = model.graph!;
    const prefix = this.namePrefix;
    const mine = (n: string | null | undefined) => prefix !== '' && (n ?? '').startsWith(prefix);
    graph.node = (graph.node ?? []).filter((n) => !mine(n.name) && !(n.output ?? []).some(mine));
    graph.initializer = (graph.initializer ?? []).filter((t) => !mine(t.name));
    graph.output = (graph.output ?? []).filter((o) => options.keepOutputs.includes(o.name ?? ''));
    const rename = options.renameOutputs;
    if (rename) for (const n of graph.node) n.output = (n.output ?? []).map((o) => rename.get(o) ?? o);
    graph.node.push(...this.nodes);
    if (rename) graph.node = topologicalOrder(graph.node);
    graph.initializer.push(...this.inits);
    graph.output.push(...this.outputs);
    const meta = new Map((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
    for (const [k, v] of Object.entries(options.metadata ?? {})) meta.set(k, v);
    model.metadataProps = [...meta].map(([key, value]) => onnx.StringStringEntryProto.create({ key, value }));
    if (options.doc !== undefined) model.docString = options.doc;
    return onnx.ModelProto.encode(model).finish();
  }
}

type NodeProto = onnxProto.onnx.INodeProto;

/** Nodes ordered so that each comes after the producers of its inputs (stable otherwise). */
function topologicalOrder(nodes: NodeProto[]): NodeProto[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => producer.set(o, i)));
  const state = new Uint8Array(nodes.length); // 0 new, 1 visiting, 2 placed
  const out: NodeProto[] = [];
  const visit = (i: number) => {
    if (state[i] === 2) return;
    if (state[i] === 1) throw new Error('The graph has a cycle.');
    state[i] = 1;
    // Iterative enough: a producer chain is as long as the network is deep (a few hundred nodes).
    for (const t of nodes[i].input ?? []) {
      const p = producer.get(t);
      if (p !== undefined) visit(p);
    }
    state[i] = 2;
    out.push(nodes[i]);
  };
  nodes.forEach((_, i) => visit(i));
  return out;
}

/** metadata_props of an ONNX model, without loading it into a runtime. */
export function readMetadata(bytes: Uint8Array): Record<string, string> {
  const model = onnx.ModelProto.decode(bytes);
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
}

/**
 * The float initializers of a model we wrote (raw little-endian data), by name, as float32; a half-precision
 * constant that a Cast node turns into float (halveFloatInitializers) is read under the Cast's output name.
 * Other tensors are skipped.
 */
export function readFloatInitializers(bytes: Uint8Array): Map<string, Float32Array> {
  const model = onnx.ModelProto.decode(bytes);
  const out = new Map<string, Float32Array>();
  const castTo = new Map(
    (model.graph?.node ?? []).filter((n) => n.opType === 'Cast').map((n) => [n.input?.[0], n.output?.[0]]),
  );
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData;
    if (!t.name || !raw) continue;
    // Copied into its own buffer: raw_data is a view of the file at any alignment (a Buffer's slice() is too).
    if (t.dataType === DType.float && raw.byteLength % 4 === 0)
      out.set(t.name, new Float32Array(new Uint8Array(raw).buffer));
    else if (t.dataType === DType.float16 && raw.byteLength % 2 === 0 && castTo.get(t.name))
      out.set(castTo.get(t.name)!, fromFloat16(new Uint16Array(new Uint8Array(raw).buffer)));
  }
  return out;
}

/**
 * The model with the named float32 initializers stored at half precision, each followed by a Cast back to
 * float under its old name, so the graph computes as before on values rounded to half precision: for large
 * constants whose precision matters less than the file's size.
 */
export function halveFloatInitializers(bytes: Uint8Array, names: string[]): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const casts: InstanceType<typeof onnx.NodeProto>[] = [];
  for (const t of graph.initializer ?? []) {
    if (!t.name || !names.includes(t.name)) continue;
    if (t.dataType !== DType.float || !t.rawData) throw new Error(`Initializer ${t.name} is not float32.`);
    const half = toFloat16(new Float32Array(new Uint8Array(t.rawData).buffer));
    const name = t.name;
    t.name = `${name}/f16`;
    t.dataType = DType.float16;
    t.rawData = new Uint8Array(half.buffer);
    casts.push(
      onnx.NodeProto.create({
        opType: 'Cast',
        input: [t.name],
        output: [name],
        name: `${name}/cast`,
        attribute: [attribute('to', DType.float)],
      }),
    );
  }
  if (casts.length !== names.length) throw new Error(`No float initializer named ${names.join(', ')}.`);
  graph.node = [...casts, ...(graph.node ?? [])];
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The model with the named float32 initializers' values replaced (same length, same dims); everything else is
 * written back as it was. Used to fold per-channel corrections into convolution weights (model/alignment.ts).
 */
export function replaceFloatInitializers(bytes: Uint8Array, values: Map<string, Float32Array>): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const left = new Set(values.keys());
  for (const t of model.graph?.initializer ?? []) {
    const v = t.name ? values.get(t.name) : undefined;
    if (!v) continue;
    if (t.dataType !== DType.float || !t.rawData || t.rawData.byteLength !== v.byteLength)
      throw new Error(`Initializer ${t.name} cannot take ${v.length} float32 values.`);
    t.rawData = new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
    left.delete(t.name!);
  }
  if (left.size > 0) throw new Error(`No initializer named ${[...left].join(', ')}.`);
  return onnx.ModelProto.encode(model).finish();
}

/** The int64 initializers of a model we wrote (raw data), by name, as numbers. */
export function readInt64Initializers(bytes: Uint8Array): Map<string, number[]> {
  const model = onnx.ModelProto.decode(bytes);
  const out = new Map<string, number[]>();
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData;
    if (t.dataType !== DType.int64 || !t.name || !raw || raw.byteLength % 8 !== 0) continue;
    out.set(t.name, Array.from(new BigInt64Array(new Uint8Array(raw).buffer), Number));
  }
  return out;
}

/** Each node's op type, inputs and outputs, in graph order (a topological order for models we write). */
export function readNodes(bytes: Uint8Array): { opType: string; inputs: string[]; outputs: string[] }[] {
  const model = onnx.ModelProto.decode(bytes);
  return (model.graph?.node ?? []).map((n) => ({
    opType: n.opType ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
  }));
}

function valueInfo(name: string, dims: Dim[], type: DTypeName) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DType[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

export function tensorProto(name: string, data: TypedData, dims: number[]) {
  const dataType =
    data instanceof Float32Array
      ? DType.float
      : data instanceof Int32Array
        ? DType.int32
        : data instanceof BigInt64Array
          ? DType.int64
          : data instanceof Int8Array
            ? DType.int8
            : DType.uint8;
  // raw_data is little-endian, which is what typed arrays are on every platform Node supports.
  const rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return onnx.TensorProto.create({ name, dims, dataType, rawData });
}

export function attribute(name: string, v: AttrValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (v instanceof FloatAttr) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.value });
  if (typeof v === 'string')
    return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === 'number') {
    return Number.isInteger(v)
      ? onnx.AttributeProto.create({ name, type: A.INT, i: v })
      : onnx.AttributeProto.create({ name, type: A.FLOAT, f: v });
  }
  if (v.length > 0 && v[0] instanceof FloatAttr) {
    return onnx.AttributeProto.create({
      name,
      type: A.FLOATS,
      floats: (v as FloatAttr[]).map((x) => x.value),
    });
  }
  const nums = v as number[];
  return nums.every(Number.isInteger)
    ? onnx.AttributeProto.create({ name, type: A.INTS, ints: nums })
    : onnx.AttributeProto.create({ name, type: A.FLOATS, floats: nums });
}
