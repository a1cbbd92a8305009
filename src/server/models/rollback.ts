/**
 * Roll back as an undo: the activation log (oldest first) replayed as a stack of versions. Activating a
 * version pushes it; activating the version just under the top (what a roll back does) pops the top; activating
 * the version already on top changes nothing. A roll back then returns to the version under the top, so
 * activate 2, activate 3, roll back, roll back goes 3 → 2 → 1 instead of bouncing between 3 and 2, and stops
 * at the bottom. The log records versions only, so a person activating the version under the top by hand is
 * read as the same undo as the roll back button: both return to what was active before.
 */

/** The versions a roll back walks down, bottom first: the last one is active, the one before it is next. */
export function undoStack(logOldestFirst: readonly number[]): number[] {
  const stack: number[] = [];
  for (const v of logOldestFirst) {
    if (stack[stack.length - 1] === v) continue;
    if (stack.length >= 2 && stack[stack.length - 2] === v) stack.pop();
    else stack.push(v);
  }
  return stack;
}

/** The version a roll back would activate, or null at the bottom of the stack (nothing to roll back to). */
export function rollbackTarget(logOldestFirst: readonly number[]): number | null {
  const stack = undoStack(logOldestFirst);
  return stack.length >= 2 ? stack[stack.length - 2] : null;
}
