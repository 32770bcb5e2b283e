/**
 * Guards an export against one image on two sides of the split, in fixed memory. The split is a function
 * of the group key, so a group can never straddle; an image can, if two of its samples carry different
 * group keys (a D_know sample keyed by its near-duplicate group, a D_ling sample of the same image keyed
 * by its sha256). One Bloom filter per split (2^bits bits each, 4 probes from the image's sha256): an
 * image whose sha256 is already in another split's filter is a suspect. Suspects are few (real leaks plus
 * false positives, about 1% of the validation and test images at 6.8M images with the default 2^26
 * bits); `confirm` settles them exactly by a second look at the manifest.
 */
import { SPLITS, type SplitName } from './sample';

const PROBES = 4;

export class LeakGuard {
  private readonly filters: Record<SplitName, Uint8Array>;
  private readonly mask: number;
  /** The sha256 of every suspect image (at most `maxSuspects`). */
  readonly suspects = new Set<string>();
  overflow = false;

  constructor(
    bits = 26,
    private readonly maxSuspects = 1_000_000,
  ) {
    if (!(bits >= 10 && bits <= 32)) throw new Error('leak guard: bits must be 10..32');
    const bytes = 2 ** bits / 8;
    this.filters = { train: new Uint8Array(bytes), validation: new Uint8Array(bytes), test: new Uint8Array(bytes) };
    this.mask = 2 ** bits - 1;
  }

  private positions(sha256: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < PROBES; i++) out.push(parseInt(sha256.slice(i * 8, i * 8 + 8), 16) & this.mask);
    return out;
  }

  /** Records an image in a split; true when it may also be in another split. */
  add(sha256: string, split: SplitName): boolean {
    const pos = this.positions(sha256);
    let suspect = false;
    for (const other of SPLITS) {
      if (other === split) continue;
      const f = this.filters[other];
      if (pos.every((p) => (f[p >>> 3]! & (1 << (p & 7))) !== 0)) suspect = true;
    }
    const own = this.filters[split];
    for (const p of pos) own[p >>> 3]! |= 1 << (p & 7);
    if (suspect) {
      if (this.suspects.size < this.maxSuspects) this.suspects.add(sha256);
      else this.overflow = true;
    }
    return suspect;
  }

  /**
   * The suspects that really are in more than one split, from the exported entries (the manifest).
   * Memory: the suspects and their splits.
   */
  async confirm(entries: AsyncIterable<{ imageSha256: string; split: SplitName; id: string }>): Promise<{ sha256: string; splits: SplitName[]; sampleIds: string[] }[]> {
    if (this.overflow) throw new Error('leak guard: too many suspects; raise the filter size (bits)');
    if (this.suspects.size === 0) return [];
    const seen = new Map<string, Map<SplitName, string>>();
    for await (const e of entries) {
      if (!this.suspects.has(e.imageSha256)) continue;
      let sides = seen.get(e.imageSha256);
      if (sides === undefined) seen.set(e.imageSha256, (sides = new Map()));
      if (!sides.has(e.split)) sides.set(e.split, e.id);
    }
    return [...seen.entries()]
      .filter(([, sides]) => sides.size > 1)
      .map(([sha256, sides]) => {
        const splits = SPLITS.filter((s) => sides.has(s));
        return { sha256, splits, sampleIds: splits.map((s) => sides.get(s)!) };
      })
      .sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
  }
}
