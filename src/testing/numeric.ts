/**
 * max |a − b| / max |b|: an error relative to the reference tensor's scale, so one tolerance fits tensors
 * of any magnitude. A loop, not Math.max(...spread), which overflows the stack on 60k values.
 */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / Math.max(scale, 1e-12);
}
