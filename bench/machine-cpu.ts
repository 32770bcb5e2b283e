/**
 * The whole machine's CPU (all cores) from /proc/stat, for benches whose work runs in processes they
 * cannot all account for (Chromium's renderers are forked by its zygote, not by the process that
 * launched the browser, so their CPU never reaches that process's reaped-children counters).
 */
import fs from 'node:fs';

/** Busy and total jiffies (1/100 s on Linux) of the whole machine since boot; zeros where /proc/stat is absent. */
export function machineJiffies(): { busy: number; total: number } {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3]! - f[4]!, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}
