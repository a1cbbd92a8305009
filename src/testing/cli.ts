// Runs the `hematovision` CLI for tests: in-process through the same program `bin/hematovision.js` runs
// (fast: no new Node, no reloading ONNX Runtime and sharp), or as a real child process for smoke tests.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Io } from '../cli/io.js';
import { run } from '../cli/main.js';
import { REPO_ROOT } from './shared.js';

/** What a run of the CLI left: its exit code and everything it wrote. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `hematovision <args…>` in this process, its output captured (no progress bars). Never rejects on errors
 * meant for people, so failures can be asserted on; a bug (any other error) rejects with its stack, where
 * the real command would print that stack and exit 1. Relative paths resolve against the current folder,
 * the repository root under vitest.
 */
export async function runCli(args: readonly string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (line) => (stdout += `${line}\n`),
    err: (line) => (stderr += `${line}\n`),
    writeOut: (text) => (stdout += text),
    writeErr: (text) => (stderr += text),
    progress: null,
    exitCode: 0,
  };
  const code = await run(args, io);
  return { code, stdout, stderr };
}

/** The real `bin/hematovision.js`, spawned with node from the repository root. */
export const BIN = join(REPO_ROOT, 'bin', 'hematovision.js');

/** `node bin/hematovision.js <args…>` as a child process; never rejects. */
export function spawnCli(args: readonly string[], timeout = 120_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: REPO_ROOT, timeout, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        // A timeout kills the child: code is then null, reported as -1 with the signal in stderr.
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr: err?.signal ? `${stderr}\n[killed by ${err.signal}]` : stderr });
      },
    );
  });
}

/** A failure meant for a person: a non-zero exit, the message on stderr, no stack trace. */
export function expectCleanFailure(r: CliRun, message: RegExp): void {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBeGreaterThan(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}
