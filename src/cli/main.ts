import { Command, CommanderError } from 'commander';
import { HematoError } from '../errors.js';
import { SOFTWARE_VERSION } from '../training/model-card.js';
import { registerAccounts } from './commands/accounts.js';
import { registerAdapt } from './commands/adapt.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerExport } from './commands/export.js';
import { registerFamiliarize } from './commands/familiarize.js';
import { registerImportBackbone } from './commands/import-backbone.js';
import { registerLocateEval } from './commands/locate-eval.js';
import { registerPredict } from './commands/predict.js';
import { registerTrain } from './commands/train.js';
import { processIo, type Io } from './io.js';

/**
 * The `hematovision` program with every command, writing through `io`. Commander throws instead of exiting
 * (help, usage errors), so it can run inside another process: see `run`.
 */
export function buildProgram(io: Io = processIo()): Command {
  // Output and exit handling first: the commands registered below inherit them.
  const program = new Command()
    .name('hematovision')
    .description(
      'White-blood-cell classification: train, evaluate, predict (decision support, not a medical device)',
    )
    .version(SOFTWARE_VERSION, '-V, --version', 'print the version')
    .configureOutput({ writeOut: (text) => io.writeOut(text), writeErr: (text) => io.writeErr(text) })
    .exitOverride()
    .showHelpAfterError();

  registerImportBackbone(program, io);
  registerTrain(program, io);
  registerFamiliarize(program, io);
  registerAdapt(program, io);
  registerEvaluate(program, io);
  registerPredict(program, io);
  registerLocateEval(program, io);
  registerExport(program, io);
  registerAccounts(program, io);
  return program;
}

/**
 * Runs `hematovision <args…>` (arguments after the program name) and returns its exit code. Errors meant for
 * people print `error: <message>` and give 1; anything else is a bug, thrown with its stack.
 */
export async function run(args: readonly string[], io: Io = processIo()): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...args], { from: 'user' });
    return io.exitCode;
  } catch (e) {
    // Help and usage errors: commander has printed them already.
    if (e instanceof CommanderError) return e.exitCode;
    // A file the user named that cannot be read or written (ENOENT, EACCES, EISDIR…) is theirs to fix too.
    const fsError = e instanceof Error && 'syscall' in e && 'path' in e;
    if (e instanceof HematoError || fsError) {
      io.err(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** `bin/hematovision.js`: the process's arguments and streams. */
export async function main(): Promise<void> {
  process.exitCode = await run(process.argv.slice(2));
}
