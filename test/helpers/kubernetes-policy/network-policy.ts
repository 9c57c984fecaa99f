// Network policy: who may connect to each component, and where each may connect to.
import { all, podTemplates, selects } from '../kustomize.js';
import { EGRESS_PORTS, INGRESS_SOURCES, type CheckSet } from './shared.js';

export const networkPolicyChecks = {
  networkPolicy: (objects, extraSources: Record<string, string> = {}) => {
    const sources = { ...INGRESS_SOURCES, ...extraSources };
    const policies = all(objects, 'NetworkPolicy');
    return podTemplates(objects).flatMap((t) => {
      const component = t.labels['app.kubernetes.io/component'] ?? '?';
      const mine = policies.filter((p) => selects(p.spec?.podSelector, t.labels));
      const out: string[] = [];
      for (const type of ['Ingress', 'Egress'] as const) {
        if (!mine.some((p) => (p.spec?.policyTypes ?? ['Ingress']).includes(type)))
          out.push(`${t.owner}: ${type.toLowerCase()} is not restricted`);
      }
      for (const rule of mine.flatMap((p) => p.spec?.ingress ?? [])) {
        if (component !== 'api') {
          out.push(`${t.owner}: accepts connections`);
          continue;
        }
        if ((rule.from ?? []).length === 0) out.push(`${t.owner}: accepts connections from anywhere`);
        for (const peer of rule.from ?? []) {
          const namespace = peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
          const pods = peer.podSelector?.matchLabels?.['app.kubernetes.io/name'];
          if (peer.ipBlock !== undefined)
            out.push(`${t.owner}: accepts connections from ${peer.ipBlock.cidr}`);
          else if (namespace === undefined || !(namespace in sources))
            out.push(`${t.owner}: accepts connections from namespace ${namespace ?? 'any'}`);
          else if (pods !== sources[namespace])
            out.push(`${t.owner}: accepts connections from any pod of ${namespace}`);
        }
        const ports = rule.ports ?? [];
        if (ports.length === 0 || ports.some((p) => p.port !== 8000 || (p.protocol ?? 'TCP') !== 'TCP')) {
          out.push(`${t.owner}: accepts connections on ports other than 8000/TCP`);
        }
      }
      const allowed = EGRESS_PORTS[component] ?? [];
      const open = new Set<string>();
      for (const rule of mine.flatMap((p) => p.spec?.egress ?? [])) {
        if ((rule.ports ?? []).length === 0) out.push(`${t.owner}: may connect on any port`);
        for (const p of rule.ports ?? []) {
          const port = `${p.port}/${p.protocol ?? 'TCP'}`;
          open.add(port);
          if (p.port === 53) {
            const dns =
              (rule.to ?? []).length > 0 &&
              (rule.to ?? []).every(
                (peer) =>
                  peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'kube-system' &&
                  peer.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns',
              );
            if (!dns) out.push(`${t.owner}: port 53 is open to more than kube-dns`);
          } else if (
            typeof p.port !== 'number' ||
            !allowed.includes(p.port) ||
            (p.protocol ?? 'TCP') !== 'TCP'
          ) {
            out.push(`${t.owner}: may connect to ${port}`);
          }
        }
      }
      for (const needed of ['53/UDP', '53/TCP', ...allowed.map((p) => `${p}/TCP`)]) {
        if (!open.has(needed)) out.push(`${t.owner}: cannot reach ${needed}`);
      }
      return out;
    });
  },
} satisfies CheckSet;
