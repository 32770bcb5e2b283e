// The workflows the mella-cpu worker registers.
export { mellaRun, runProgressQuery } from './mella-run';
export { mellaLanguageRun, languageProgressQuery } from './language-run';
export { mellaDoctor } from './doctor';
export { mellaFinetune, finetuneProgressQuery } from './finetune';
export { mellaEvaluate, evaluateProgressQuery } from './evaluate';
