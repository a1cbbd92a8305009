/**
 * Where a command writes: the process's stdout and stderr when `hematovision` runs, a test's buffers when
 * the program runs in-process. Commands write through it only, never to `console` or `process` directly.
 */
export interface Io {
  /** One line on stdout (a newline is added). */
  out(line: string): void;
  /** One line on stderr (a newline is added). */
  err(line: string): void;
  /** Text on stdout as is: commander's help. */
  writeOut(text: string): void;
  /** Text on stderr as is: commander's usage errors. */
  writeErr(text: string): void;
  /** The terminal progress bars draw on, or null for no bars (stderr is not a terminal, or a test). */
  progress: NodeJS.WriteStream | null;
  /**
   * The exit code so far. A command that finishes but could not do all of its work (some images of a
   * batch unreadable) sets it to 1 after printing why.
   */
  exitCode: number;
}

/** The process's own streams, as `bin/hematovision.js` runs: lines through `console`, bars on a TTY stderr. */
export function processIo(): Io {
  return {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    writeOut: (text) => process.stdout.write(text),
    writeErr: (text) => process.stderr.write(text),
    progress: process.stderr.isTTY ? process.stderr : null,
    exitCode: 0,
  };
}
