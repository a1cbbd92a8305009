/** --tta, as predict and evaluate describe it. */
export const TTA_HELP =
  "test-time augmentation: average each cell's 8 flips and turns (more accurate, 8× the network time)";
