import type { ConvLayer, Layer, NetSpec } from '../net/spec.js';

/** The project's one seeded generator (mulberry32), under the name this module's callers use. */
import { createRng as seededRandom } from '../../imaging/random.js';
export { seededRandom };

/**
 * A small random network from the same ops as MobileNetV2, covering every backward case: strides 1 and 2,
 * group 1 and depthwise, asymmetric SAME pads, a stride-2 conv that leaves rows unread (output_padding),
 * residual adds, non-square maps, Clip(0,6) hitting both bounds, two pooled feature taps and a Gemm head.
 * Input 20×20.
 */
export function smallTestSpec(seed = 1, classes = 3): NetSpec {
  const rand = seededRandom(seed);
  const conv = (
    name: string,
    input: string,
    ci: number,
    co: number,
    k: number,
    stride: number,
    pads: [number, number, number, number],
    depthwise: boolean,
    relu6: boolean,
    block: number,
    gain = 1,
  ): ConvLayer => {
    const group = depthwise ? ci : 1;
    const fanIn = (ci / group) * k * k;
    const scale = gain * Math.sqrt(6 / fanIn);
    return {
      kind: 'conv',
      name,
      input,
      weight: Float32Array.from({ length: (co * ci * k * k) / group }, () => (2 * rand() - 1) * scale),
      bias: Float32Array.from({ length: co }, () => 2 * rand() - 0.5),
      outChannels: co,
      inChannels: ci,
      kernel: [k, k],
      stride: [stride, stride],
      pads,
      group,
      relu6,
      block,
    };
  };
  const same: [number, number, number, number] = [1, 1, 1, 1];
  const layers: Layer[] = [
    conv('stem', 'input', 3, 8, 3, 2, [0, 0, 1, 1], false, true, 0, 3), // 20 → 10, TFLite SAME
    conv('b1/dw', 'stem', 8, 8, 3, 1, same, true, true, 1, 2),
    conv('b1/project', 'b1/dw', 8, 8, 1, 1, [0, 0, 0, 0], false, false, 1),
    { kind: 'add', name: 'b1/add', inputs: ['stem', 'b1/project'], block: 1 },
    conv('b2/expand', 'b1/add', 8, 12, 1, 1, [0, 0, 0, 0], false, true, 2, 2),
    // 10×10 → 5×4: SAME-like (odd pad after) down the rows, VALID across leaving one column unread.
    conv('b2/dw', 'b2/expand', 12, 12, 3, 2, [0, 0, 1, 0], true, true, 2, 2),
    conv('b2/project', 'b2/dw', 12, 8, 1, 1, [0, 0, 0, 0], false, false, 2),
    conv('b3/conv', 'b2/project', 8, 8, 3, 1, same, false, true, 3),
    { kind: 'add', name: 'b3/add', inputs: ['b2/project', 'b3/conv'], block: 3 },
    conv('b4/conv', 'b3/add', 8, 8, 3, 2, [1, 1, 0, 0], false, true, 4), // 5 → 2, one row unread
    conv('b4/dw', 'b4/conv', 8, 8, 3, 1, [1, 0, 1, 2], true, true, 4), // asymmetric, stride 1
  ];
  const d = 12 + 8;
  return {
    name: 'small_test_net',
    input: { name: 'input', channels: 3, height: 20, width: 20 },
    layers,
    features: ['b2/expand', 'b4/dw'],
    head: {
      weight: Float32Array.from({ length: classes * d }, () => (2 * rand() - 1) * 0.5),
      bias: Float32Array.from({ length: classes }, () => rand() - 0.5),
      classes,
    },
  };
}
