// The evaluate stage's activities on the mella-cpu queue (re-exported by activities/cpu.ts).
export { registerEvaluation, finishEvaluation } from './record';
export { planEvaluation } from './plan';
export { scoreEvaluation } from './score';
export { writeEvaluationReport } from './report';
