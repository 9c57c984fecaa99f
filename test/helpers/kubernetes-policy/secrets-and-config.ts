// Secrets and configuration: secrets come from the ExternalSecret, never from the kit or a ConfigMap,
// and the ConfigMap sets what the API reads.
import { settings, type SettingName } from '../../../src/config/schema.js';
import { all, describeObject, effectiveSetting, find, podTemplates } from '../kustomize.js';
import { API_SECRETS, apiTemplates, CONFIG_KEYS, CONFIG_MAP, each, type CheckSet } from './shared.js';

export const secretsAndConfigChecks = {
  secretSources: (objects) => {
    const isSecret = (name: string) =>
      name in settings && (settings[name as SettingName] as { secret?: boolean }).secret === true;
    const produced = new Map(
      all(objects, 'ExternalSecret').map((e) => [
        e.spec?.target?.name ?? e.metadata.name,
        (e.spec?.data ?? []).map((d) => d.secretKey),
      ]),
    );
    const out = all(objects, 'ConfigMap').flatMap((cm) =>
      Object.keys(cm.data ?? {})
        .filter(isSecret)
        .map((key) => `${describeObject(cm)} holds the secret ${key}`),
    );
    out.push(
      ...each(podTemplates(objects), (_t, c, where) =>
        (c.env ?? [])
          .filter((e) => isSecret(e.name))
          .flatMap((e) => {
            const ref = e.valueFrom?.secretKeyRef;
            if (ref === undefined) return [`${where}: ${e.name} is not read from a Secret`];
            const keys = produced.get(ref.name ?? '');
            if (keys === undefined)
              return [`${where}: ${e.name} reads Secret ${ref.name}, which no ExternalSecret produces`];
            return keys.includes(ref.key)
              ? []
              : [`${where}: ${e.name} reads key ${ref.key}, which the ExternalSecret does not set`];
          }),
      ),
    );
    out.push(
      ...each(apiTemplates(objects), (_t, c, where) =>
        API_SECRETS.filter(
          (name) => c.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef === undefined,
        ).map((name) => `${where}: ${name} is not set from the Secret`),
      ),
    );
    return out;
  },

  externalSecret: (objects) => {
    const secrets = all(objects, 'ExternalSecret');
    if (secrets.length === 0) return ['no ExternalSecret'];
    return secrets.flatMap((e) => {
      const out: string[] = [];
      const where = describeObject(e);
      if (e.apiVersion !== 'external-secrets.io/v1beta1')
        out.push(`${where}: apiVersion ${String(e.apiVersion)}`);
      const store = e.spec?.secretStoreRef;
      if (store?.kind !== 'ClusterSecretStore' || store.name !== 'platform-secrets') {
        out.push(`${where}: store is ${store?.kind}/${store?.name}, not ClusterSecretStore/platform-secrets`);
      }
      for (const d of e.spec?.data ?? [])
        if (!d.remoteRef.key) out.push(`${where}: ${d.secretKey} has no remote key`);
      return out;
    });
  },

  noCommittedSecret: (objects) =>
    objects.filter((o) => o.kind === 'Secret').map((o) => `${describeObject(o)} is committed`),

  configMap: (objects) => {
    const out = each(apiTemplates(objects), (_t, c, where) =>
      (c.envFrom ?? []).some((s) => s.configMapRef?.name === CONFIG_MAP)
        ? undefined
        : `${where}: no envFrom ConfigMap ${CONFIG_MAP}`,
    );
    const data = find(objects, 'ConfigMap', CONFIG_MAP)?.data;
    if (data === undefined) return [...out, `no ConfigMap/${CONFIG_MAP}`];
    out.push(...CONFIG_KEYS.filter((k) => !(k in data)).map((k) => `${CONFIG_MAP} does not set ${k}`));
    if (data.MIGRATE_ON_START !== 'false')
      out.push(`${CONFIG_MAP}: MIGRATE_ON_START is ${data.MIGRATE_ON_START}, not false`);
    out.push(
      ...each(apiTemplates(objects), (_t, c, where) =>
        effectiveSetting(objects, c, 'METRICS_PORT') === undefined
          ? undefined
          : `${where}: METRICS_PORT is set`,
      ),
    );
    return out;
  },
} satisfies CheckSet;
