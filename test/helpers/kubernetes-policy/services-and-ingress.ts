// Services and ingress: what routes to the API pods, and what the Ingress exposes.
import { all, describeObject, find, selects } from '../kustomize.js';
import { apiTemplates, APP, INTERNAL_PATHS, jobTemplates, routes, type CheckSet } from './shared.js';

export const servicesAndIngressChecks = {
  services: (objects) => {
    const api = apiTemplates(objects);
    const jobs = jobTemplates(objects);
    const out: string[] = [];
    const main = find(objects, 'Service', APP);
    if (main === undefined) return [`no Service/${APP}`];
    if ((main.spec?.type ?? 'ClusterIP') !== 'ClusterIP') out.push(`Service/${APP} is ${main.spec?.type}`);
    if (!(main.spec?.ports ?? []).some((p) => p.port === 80 && p.targetPort === 'http')) {
      out.push(`Service/${APP} does not map port 80 to http`);
    }
    for (const service of all(objects, 'Service')) {
      const where = describeObject(service);
      const selector = { matchLabels: service.spec?.selector ?? {} };
      for (const t of api) if (!selects(selector, t.labels)) out.push(`${where} does not select ${t.owner}`);
      for (const t of jobs)
        if (selects(selector, t.labels)) out.push(`${where} selects the pods of ${t.owner}`);
      for (const port of service.spec?.ports ?? []) {
        for (const t of api) {
          const target = port.targetPort;
          const served = t.spec.containers.some((c) =>
            (c.ports ?? []).some((p) =>
              typeof target === 'string' ? p.name === target : p.containerPort === target,
            ),
          );
          if (!served) out.push(`${where}: target port ${target} is not a port of ${t.owner}`);
        }
      }
    }
    return out;
  },

  ingress: (objects) => {
    const ingresses = all(objects, 'Ingress');
    if (ingresses.length === 0) return ['no Ingress'];
    return ingresses.flatMap((ingress) => {
      const where = describeObject(ingress);
      const a = ingress.metadata.annotations ?? {};
      const spec = ingress.spec ?? {};
      const out: string[] = [];
      if (spec.ingressClassName !== 'nginx') out.push(`${where}: ingress class ${spec.ingressClassName}`);
      if (!a['cert-manager.io/cluster-issuer'])
        out.push(`${where}: no cert-manager.io/cluster-issuer annotation`);
      for (const key of ['limit-rps', 'limit-connections']) {
        if (!/^[1-9]\d*$/.test(a[`nginx.ingress.kubernetes.io/${key}`] ?? ''))
          out.push(`${where}: no nginx ${key} limit`);
      }
      const tlsHosts = (spec.tls ?? []).filter((t) => t.secretName).flatMap((t) => t.hosts ?? []);
      for (const rule of spec.rules ?? []) {
        if (rule.host === undefined || !tlsHosts.includes(rule.host))
          out.push(`${where}: host ${rule.host} has no TLS`);
        for (const path of rule.http?.paths ?? []) {
          const backend = path.backend.service;
          const service = backend === undefined ? undefined : find(objects, 'Service', backend.name);
          if (service === undefined)
            out.push(`${where}: ${path.path} routes to a missing Service ${backend?.name}`);
          else if (
            !(service.spec?.ports ?? []).some(
              (p) => p.name === backend?.port?.name || p.port === backend?.port?.number,
            )
          ) {
            out.push(`${where}: ${path.path} routes to a port ${backend?.name} does not have`);
          }
          for (const url of INTERNAL_PATHS)
            if (routes(path, url)) out.push(`${where}: ${path.path} exposes ${url}`);
        }
      }
      return out;
    });
  },
} satisfies CheckSet;
