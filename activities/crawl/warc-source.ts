/**
 * Activity (mella-cpu): reads one WARC source of a language without a browser: every HTML response
 * becomes a page (language control as for the browser), its images go to crawl_images. Records that
 * are not usable (not a response, truncated, malformed) are counted by reason. A retried attempt reads
 * the file again; pages already recorded are not recorded twice.
 */
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { ConfigError } from '../shared/config';
import { runConfig } from '../run/run-record';
import { db } from '../shared/db';
import type { ShardResult } from '../../workflows/types';
import { extractImages } from './extract-images';
import { judgePageLanguage } from './page-language';
import { recordPage } from './record-page';
import { normalizeUrl } from './url-normalize';
import { readWarcHtml, WarcSourceError } from './warc';

export async function crawlWarc(args: { runId: string; lang: string; source: string; index: number }): Promise<ShardResult> {
  const { runId, lang, source } = args;
  const done = await db().query<{ html: number }>('select html from crawl_warc_sources where run_id = $1 and lang = $2 and source = $3', [runId, lang, source]);
  if (done.rows[0]) return { ...(await pageCounts(runId, lang, source)), shardIndex: args.index, skipped: true };
  const ctx = Context.current();
  const config = await runConfig(runId);
  const site = config.crawl.sites[lang];
  const stream = readWarcHtml(source, {
    ...(site?.warcFallbackCharset ? { fallbackCharset: site.warcFallbackCharset } : {}),
    language: lang,
    userAgent: config.crawl.userAgent,
    signal: ctx.cancellationSignal,
  });
  try {
    for await (const rec of stream) {
      const n = normalizeUrl(rec.targetUri);
      if (!n.ok) continue;
      const extraction = extractImages(rec.html, n.url, rec.contentLanguage ? { httpContentLanguage: rec.contentLanguage } : {});
      const language = config.crawl.languageControl.enabled
        ? await judgePageLanguage(rec.html, extraction.page.lang, lang, config.crawl.languageControl.minTextChars)
        : { harvest: true, declared: extraction.page.lang, detected: null };
      await recordPage(
        runId,
        lang,
        {
          urlKey: n.url, url: rec.targetUri, depth: 0, via: 'warc', source, outcome: language.harvest ? 'harvested' : 'rejected',
          reason: language.harvest ? null : language.reason ?? null, detail: language.harvest ? null : language.detail ?? null,
          httpStatus: rec.httpStatus, declaredLang: language.declared, detectedLang: language.detected,
          contentSha256: createHash('sha256').update(rec.html).digest('hex'), extraction, followLinks: false,
        },
        config.crawl,
        false,
      );
      ctx.heartbeat({ offset: rec.offset });
    }
  } catch (err) {
    if (err instanceof WarcSourceError) throw new ConfigError(`WARC source ${source}: ${err.message}`);
    throw err;
  }
  const s = stream.stats;
  await db().query(
    `insert into crawl_warc_sources (run_id, lang, source, records, html, skipped) values ($1, $2, $3, $4, $5, $6) on conflict do nothing`,
    [runId, lang, source, s.records, s.html, JSON.stringify(s.skipped)],
  );
  return { ...(await pageCounts(runId, lang, source)), shardIndex: args.index, skipped: false };
}

async function pageCounts(runId: string, lang: string, source: string) {
  const { rows } = await db().query<{ outcome: string; reason: string | null; n: string }>(
    `select outcome, reason, count(*) as n from crawl_pages where run_id = $1 and lang = $2 and via = 'warc' and source = $3 group by 1, 2`,
    [runId, lang, source],
  );
  const r = { in: 0, kept: 0, rejected: {} as Record<string, number> };
  for (const row of rows) {
    const n = Number(row.n);
    r.in += n;
    if (row.outcome === 'harvested') r.kept += n;
    else r.rejected[row.reason ?? 'unknown'] = (r.rejected[row.reason ?? 'unknown'] ?? 0) + n;
  }
  return r;
}
