import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inferFormat, readInputList, urlKey, type ListLine } from '../activities/ingest/input-list';
import { tmpDir } from './support/pipeline';

async function readAll(content: string, name: string): Promise<ListLine[]> {
  const file = path.join(tmpDir('list'), name);
  fs.writeFileSync(file, content);
  const out: ListLine[] = [];
  for await (const l of readInputList(file, inferFormat(file))) out.push(l);
  return out.sort((a, b) => a.lineNo - b.lineNo);
}

describe('input lists', () => {
  it('reads JSONL with column aliases, reporting bad lines by number', async () => {
    const lines = await readAll(
      ['{"url":"http://a/1.jpg","text":"หนึ่ง","lang":"th","width":3}', '{not json', '', '{"TEXT":"no url"}', '{"URL":"http://a/2.jpg","TEXT":"two","page_url":"http://a/"}'].join('\n'),
      'l.jsonl',
    );
    expect(lines).toEqual([
      { lineNo: 1, record: { url: 'http://a/1.jpg', text: 'หนึ่ง', pageUrl: null, lang: 'th', extra: { width: 3 } } },
      { lineNo: 2, error: expect.objectContaining({ reason: 'malformed_line' }) },
      { lineNo: 4, error: expect.objectContaining({ reason: 'missing_url' }) },
      { lineNo: 5, record: { url: 'http://a/2.jpg', text: 'two', pageUrl: 'http://a/', lang: null, extra: null } },
    ]);
  });

  it('reads TSV (unquoted, as img2dataset writes it) and flags a line with extra columns', async () => {
    const lines = await readAll('url\ttext\tlang\nhttp://a/1.jpg\t"quoted" stays\tvi\nhttp://a/2.jpg\ttwo\tvi\textra\nhttp://a/3.jpg\t\tvi\n', 'l.tsv');
    expect(lines.map((l) => ('record' in l ? [l.lineNo, l.record.url, l.record.text] : [l.lineNo, l.error.reason]))).toEqual([
      [2, 'http://a/1.jpg', '"quoted" stays'],
      [3, 'malformed_line'],
      [4, 'http://a/3.jpg', null],
    ]);
  });

  it('reads CSV with quoted commas and newlines', async () => {
    const lines = await readAll('url,text\r\nhttp://a/1.jpg,"one, with comma"\r\nhttp://a/2.jpg,"two\nlines"\r\n', 'l.csv');
    expect(lines.map((l) => ('record' in l ? l.record.text : l.error.reason))).toEqual(['one, with comma', 'two\nlines']);
  });

  it('refuses a list without a url column', async () => {
    await expect(readAll('link,text\nhttp://a,b\n', 'nourl.csv')).rejects.toThrow(/no url column/);
  });

  it('normalizes URLs for deduplication', () => {
    expect(urlKey('HTTP://Example.COM:80/a.jpg?x=1#frag')).toBe('http://example.com/a.jpg?x=1');
    expect(urlKey('https://example.com:443/a.jpg')).toBe('https://example.com/a.jpg');
    expect(urlKey('not a url')).toBe('not a url');
    expect(() => inferFormat('list.parquet')).toThrow(/format/);
  });
});
