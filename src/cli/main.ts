import { Command } from 'commander';
import { HematoError } from '../errors.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerFamiliarize } from './commands/familiarize.js';
import { registerImportBackbone } from './commands/import-backbone.js';
import { registerLocateEval } from './commands/locate-eval.js';
import { registerPredict } from './commands/predict.js';
import { registerTrain } from './commands/train.js';

const program = new Command()
  .name('hematovision')
  .description(
    'White-blood-cell classification: train, evaluate, predict (decision support, not a medical device)',
  )
  .showHelpAfterError();

registerImportBackbone(program);
registerTrain(program);
registerFamiliarize(program);
registerEvaluate(program);
registerPredict(program);
registerLocateEval(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Errors meant for people get their message and exit 1; anything else is a bug and keeps its stack.
  // A file the user named that cannot be read or written (ENOENT, EACCES, EISDIR…) is theirs to fix too.
  const fsError = e instanceof Error && 'syscall' in e && 'path' in e;
  if (e instanceof HematoError || fsError) {
    console.error(`error: ${e.message}`);
    process.exitCode = 1;
  } else {
    throw e;
  }
}
