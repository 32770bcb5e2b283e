/** What the export hands every format writer, once per exported sample, in export order. */
import type { Sample, SplitName } from './sample';
import type { WrittenFile } from './sink';

export interface ExportRecord {
  sample: Sample;
  split: SplitName;
  /** Position of the sample within its split (0-based): the same in every format, and in the manifest. */
  index: number;
  /** `images/<sha256[0:2]>/<sha256>.<ext>`, relative to the export directory. */
  imageRel: string;
  /** Absolute path of the image file inside the export being written. */
  imageFile: string;
}

export interface FormatWriter {
  readonly format: string;
  write(record: ExportRecord): Promise<void>;
  /** Closes every file; returns them (paths relative to the export directory). */
  finish(): Promise<WrittenFile[]>;
  /** Closes whatever is open after a failure. */
  abort(): Promise<void>;
}
