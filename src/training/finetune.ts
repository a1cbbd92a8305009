/** Fine-tuning (see finetune/index.ts); this path stays so importers of `training/finetune.js` keep working. */
export * from './finetune/index.js';
