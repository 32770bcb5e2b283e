/**
 * The page facts the alt-text operators read, from an ingest record: the site key (the page's
 * registrable domain, so `www.idnes.cz` and `zpravy.idnes.cz` are one site), the page title and the
 * site name. Input lists may carry `page_title` and `site_name` columns; the crawl stage writes them.
 */
import { getDomain, getHostname } from 'tldts';

/** Registrable domain of the page (public suffix list), its host for IPs and local names; undefined without a page URL. */
export function siteKey(pageUrl: string | null | undefined): string | undefined {
  if (!pageUrl) return undefined;
  const domain = getDomain(pageUrl);
  if (domain) return domain.toLowerCase();
  const host = getHostname(pageUrl);
  return host ? host.toLowerCase() : undefined;
}

function stringField(extra: Record<string, unknown> | null, ...names: string[]): string | undefined {
  for (const name of names) {
    const v = extra?.[name];
    if (typeof v === 'string' && v.trim() !== '') return v;
  }
  return undefined;
}

export interface PageFacts {
  readonly site: string | undefined;
  readonly pageTitle: string | undefined;
  readonly siteName: string | undefined;
}

export function pageFacts(pageUrl: string | null, extra: Record<string, unknown> | null): PageFacts {
  return {
    site: siteKey(pageUrl),
    pageTitle: stringField(extra, 'page_title', 'pageTitle', 'title'),
    siteName: stringField(extra, 'site_name', 'siteName', 'og_site_name'),
  };
}
