// GET /: a newcomer's first request. JSON for clients and curl, a small HTML page for a browser, and every
// link on it leads somewhere that answers.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/app.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('GET /', () => {
  const t = useTestApp({ ANONYMOUS_ACCESS: 'true' });

  it('when curl asks (Accept: */*), then a JSON index of the links, which varies by Accept', async () => {
    const response = await t.app.inject({ url: '/', headers: { accept: '*/*' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(response.headers.vary).toContain('accept');
    const index = response.json();
    expect(index).toMatchObject({
      name: 'reliability-api',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
    expect(Object.keys(index.links)).toEqual(expect.arrayContaining(['docs', 'openapi', 'random', 'ready']));
  });

  it('when a browser asks, then an HTML page with the version, a curl example and the same links', async () => {
    const response = await t.app.inject({ url: '/', headers: { accept: BROWSER_ACCEPT, host: 'api.test' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = response.body;
    expect(html).toMatch(/^<!doctype html>/);
    const index = (await t.app.inject({ url: '/' })).json();
    expect(html).toContain(`<small>${index.version}</small>`);
    expect(html).toContain('curl &#39;http://api.test/v1/random/integers?min=1&amp;max=49');
    for (const link of Object.values<{ href: string }>(index.links))
      expect(html).toContain(`href="${link.href.replaceAll('&', '&amp;')}"`);
  });

  it('when a client prefers JSON over HTML, then JSON', async () => {
    const response = await t.app.inject({
      url: '/',
      headers: { accept: 'application/json, text/html;q=0.5' },
    });
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('when each link is followed, then it answers 200', async () => {
    const index = (await t.app.inject({ url: '/' })).json();
    for (const link of Object.values<{ href: string }>(index.links)) {
      const response = await t.app.inject({ url: link.href });
      expect(response.statusCode, link.href).toBe(200);
    }
  });
});
