/** Names of the outputs every classifier model has. */
export const OUTPUTS = {
  probabilities: 'probabilities',
  logits: 'logits',
  cam: 'cam',
  features: 'features',
  featureMap: 'feature_map',
  /** [N] distance to the nearest class in feature space (model/familiarity.ts); models with a reference. */
  cellDistance: 'cell_distance',
  /** [N] distance of the crop's early-block features to the nearest training lab. */
  imageDistance: 'image_distance',
} as const;
