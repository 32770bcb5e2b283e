/** The task queues by resource (DESIGN.md). Kept apart from ./queues so the CLI can name them without loading activities. */
export const QUEUE_NAMES = ['mella-cpu', 'mella-browser', 'mella-llm', 'mella-gpu'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** Accepts `cpu` or `mella-cpu`. */
export function parseQueue(name: string): QueueName {
  const full = name.startsWith('mella-') ? name : `mella-${name}`;
  if (!(QUEUE_NAMES as readonly string[]).includes(full)) throw new Error(`unknown queue "${name}"; one of ${QUEUE_NAMES.join(', ')}`);
  return full as QueueName;
}
