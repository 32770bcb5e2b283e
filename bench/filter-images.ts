/** bench:filter helper: byte-level copies of an image that decode to the same pixels. */

/** Makes `bytes` unique for index `i` without changing a pixel (see bench/filter.ts). */
export function variant(bytes: Buffer, i: number): Buffer {
  const tag = Buffer.from(`mella bench:filter copy ${i}`);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const com = Buffer.alloc(4);
    com.writeUInt16BE(0xfffe, 0);
    com.writeUInt16BE(tag.length + 2, 2);
    return Buffer.concat([bytes.subarray(0, 2), com, tag, bytes.subarray(2)]);
  }
  if (bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') {
    const body = tag.length % 2 ? Buffer.concat([tag, Buffer.from(' ')]) : tag;
    const head = Buffer.alloc(8);
    head.write('MELA', 0, 'latin1');
    head.writeUInt32LE(body.length, 4);
    const out = Buffer.concat([bytes.subarray(0, 8 + bytes.readUInt32LE(4)), head, body]);
    out.writeUInt32LE(out.length - 8, 4);
    return out;
  }
  if (bytes.toString('latin1', 4, 8) === 'ftyp') {
    const box = Buffer.alloc(8);
    box.writeUInt32BE(8 + tag.length, 0);
    box.write('free', 4, 'latin1');
    return Buffer.concat([bytes, box, tag]);
  }
  throw new Error('bench:filter: no byte-level variant for this format');
}
