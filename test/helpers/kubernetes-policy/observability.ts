// Observability: how Prometheus finds and scrapes the API, the alert on its absence, and the labels
// every object and pod carries.
import { all, describeObject, one, podTemplates, selects } from '../kustomize.js';
import { apiTemplates, APP, each, httpPort, type CheckSet } from './shared.js';

export const observabilityChecks = {
  scrapeAnnotations: (objects) =>
    each(apiTemplates(objects), (t, c, where) => {
      const a = t.annotations;
      const expected = {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(httpPort(c)),
        'prometheus.io/path': '/metrics',
      };
      return Object.entries(expected)
        .filter(([k, v]) => a[k] !== v)
        .map(([k, v]) => `${where}: annotation ${k} is ${a[k]}, not ${v}`);
    }),

  monitoring: (objects) => {
    const out: string[] = [];
    const service = one(objects, 'Service', APP);
    const monitors = all(objects, 'ServiceMonitor');
    if (monitors.length === 0) out.push('no ServiceMonitor');
    for (const monitor of monitors) {
      const where = describeObject(monitor);
      if (!selects(monitor.spec.selector, service.metadata.labels ?? {}))
        out.push(`${where} does not select Service/${APP}`);
      for (const endpoint of monitor.spec.endpoints ?? []) {
        if (!(service.spec?.ports ?? []).some((p) => p.name === endpoint.port))
          out.push(`${where}: no Service port ${endpoint.port}`);
        if (endpoint.path !== '/metrics') out.push(`${where}: scrapes ${endpoint.path}`);
      }
      const job =
        monitor.spec.jobLabel === undefined
          ? service.metadata.name
          : service.metadata.labels?.[monitor.spec.jobLabel];
      if (job !== APP) out.push(`${where}: scraped series get job="${job}", not job="${APP}"`);
    }
    const alerts = all(objects, 'PrometheusRule').flatMap(
      (r) => r.spec.groups?.flatMap((g) => g.rules ?? []) ?? [],
    );
    const down = alerts.find((r) => /^up\{job="reliability-api"\}\s*==\s*0$/.test(String(r.expr).trim()));
    if (down === undefined) return [...out, 'no alert on up{job="reliability-api"} == 0'];
    if (!down.for) out.push(`${down.alert}: no "for"`);
    if (!['critical', 'warning', 'info'].includes(down.labels?.severity ?? ''))
      out.push(`${down.alert}: no severity`);
    for (const key of ['summary', 'description', 'runbook_url']) {
      if (!down.annotations?.[key]) out.push(`${down.alert}: no ${key}`);
    }
    return out;
  },

  labels: (objects) => {
    const expected = { 'app.kubernetes.io/name': APP, 'app.kubernetes.io/part-of': APP };
    const missing = (labels: Record<string, string> | undefined) =>
      Object.entries(expected)
        .filter(([k, v]) => labels?.[k] !== v)
        .map(([k]) => k);
    return [
      ...objects.flatMap((o) => missing(o.metadata.labels).map((k) => `${describeObject(o)}: no label ${k}`)),
      ...podTemplates(objects).flatMap((t) => missing(t.labels).map((k) => `${t.owner} pods: no label ${k}`)),
    ];
  },
} satisfies CheckSet;
