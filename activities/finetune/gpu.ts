// Activities of the mella-gpu task queue: training (one job per GPU: the queue's worker has one slot per GPU).
export { finetuneTrain } from './train';
