/**
 * ms-swift export: its standard `messages` format as JSON Lines, one file per split
 * (`ms-swift/<split>.jsonl`), with `<image>` in the user turn and the image paths in `images`
 * (ms-swift's documented custom-dataset format: keys `messages` and `images`, roles user/assistant,
 * one `<image>` per entry of `images`). ms-swift resolves relative image paths against the working
 * directory, so train from the export directory:
 *
 *   cd <export> && swift sft --dataset ms-swift/train.jsonl --val_dataset ms-swift/validation.jsonl ...
 *
 *   {"images":["images/3f/3f...c1.jpg"],"messages":[{"content":"<image>Что изображено на этой картинке?","role":"user"},{"content":"Храм Василия Блаженного","role":"assistant"}]}
 */
import { canonicalJson } from './json';
import { checkImageTokens, ImageTokenError, llamaFactoryRecord } from './llamafactory';
import { SPLITS, type SplitName } from './sample';
import { FileSink, type WrittenFile } from './sink';
import type { ExportRecord, FormatWriter } from './writer';

export const MS_SWIFT_DIR = 'ms-swift';
export const msSwiftFile = (split: SplitName) => `${MS_SWIFT_DIR}/${split}.jsonl`;

/** Same record shape as the sharegpt export: `{messages, images}` (schema: `llamaFactoryRecordSchema`). */
export const msSwiftRecord = llamaFactoryRecord;

export class MsSwiftWriter implements FormatWriter {
  readonly format = 'ms-swift';
  private readonly sinks = new Map<SplitName, FileSink>();

  constructor(readonly root: string) {}

  private async sink(split: SplitName) {
    let s = this.sinks.get(split);
    if (s === undefined) {
      s = await FileSink.open(this.root, msSwiftFile(split));
      this.sinks.set(split, s);
    }
    return s;
  }

  async write(r: ExportRecord): Promise<void> {
    const record = msSwiftRecord(r);
    const problem = checkImageTokens(record);
    if (problem) throw new ImageTokenError(`sample ${r.sample.id}: ${problem}`);
    await (await this.sink(r.split)).write(`${canonicalJson(record)}\n`);
  }

  async finish(): Promise<WrittenFile[]> {
    const files: WrittenFile[] = [];
    for (const split of SPLITS) files.push(await (await this.sink(split)).close());
    return files;
  }

  async abort() {
    for (const s of this.sinks.values()) await s.abort();
  }
}
