/** Reads a text file line by line (UTF-8, `\n` or `\r\n`), in memory of one line. */
import { createReadStream } from 'node:fs';
import readline from 'node:readline';

export async function* readLines(file: string): AsyncGenerator<string> {
  const rl = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
  }
}
