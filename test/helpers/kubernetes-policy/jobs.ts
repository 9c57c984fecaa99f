// Jobs: the migration that runs before each release, and the scheduled backup.
import { isDeepStrictEqual } from 'node:util';
import { all, describeObject, find, one } from '../kustomize.js';
import { APP, isHelmHookBefore, MIGRATE_COMMAND, type CheckSet } from './shared.js';

export const jobChecks = {
  migrationJob: (objects) => {
    const job = find(objects, 'Job', 'reliability-api-migrate');
    if (job === undefined) return ['no Job/reliability-api-migrate'];
    const out: string[] = [];
    const a = job.metadata.annotations ?? {};
    // Kustomize: an Argo CD PreSync hook. Helm: a pre-install and pre-upgrade hook (Argo CD runs those as
    // PreSync when it syncs the chart).
    const helm = a['helm.sh/hook'] !== undefined;
    if (helm) {
      if (!isHelmHookBefore(a)) out.push('the migration is not a Helm pre-install and pre-upgrade hook');
      if (!(a['helm.sh/hook-delete-policy'] ?? '').includes('before-hook-creation'))
        out.push('the migration hook is not replaced on each upgrade');
    } else {
      if (a['argocd.argoproj.io/hook'] !== 'PreSync')
        out.push('the migration is not an Argo CD PreSync hook');
      if (!(a['argocd.argoproj.io/hook-delete-policy'] ?? '').includes('BeforeHookCreation')) {
        out.push('the migration hook is not replaced on each sync');
      }
    }
    const spec = job.spec!;
    if (spec.backoffLimit === undefined || spec.backoffLimit > 3)
      out.push(`backoffLimit ${spec.backoffLimit}`);
    if (spec.ttlSecondsAfterFinished === undefined) out.push('no ttlSecondsAfterFinished');
    if (spec.activeDeadlineSeconds === undefined) out.push('no activeDeadlineSeconds');
    if (spec.template.spec?.restartPolicy !== 'Never')
      out.push(`restartPolicy ${spec.template.spec?.restartPolicy}`);
    const [container] = spec.template.spec?.containers ?? [];
    const command = [...(container?.command ?? []), ...(container?.args ?? [])];
    if (!isDeepStrictEqual(command, MIGRATE_COMMAND)) out.push(`runs ${command.join(' ')}`);
    const api = one(objects, 'Deployment', APP).spec?.template.spec?.containers.find((c) => c.name === 'api');
    if (
      !isDeepStrictEqual(container?.envFrom, api?.envFrom) ||
      !isDeepStrictEqual(container?.env, api?.env)
    ) {
      out.push('the migration is not configured like the API');
    }
    // What the Job needs must be appliable before the first sync (docs/kubernetes.md, "First sync").
    const secretNames = new Set(
      (container?.env ?? []).map((e) => e.valueFrom?.secretKeyRef?.name).filter(Boolean),
    );
    const needed = [
      find(objects, 'ServiceAccount', spec.template.spec?.serviceAccountName ?? ''),
      ...(container?.envFrom ?? []).map((s) => find(objects, 'ConfigMap', s.configMapRef?.name ?? '')),
      ...all(objects, 'ExternalSecret').filter((e) =>
        secretNames.has(e.spec?.target?.name ?? e.metadata.name),
      ),
    ];
    for (const object of needed) {
      if (object === undefined) out.push('the migration needs an object the kit does not render');
      else if (object.metadata.labels?.['app.kubernetes.io/component'] !== 'config') {
        out.push(`${describeObject(object)} is not labelled app.kubernetes.io/component=config`);
      } else if (helm) {
        // A pre-install hook runs before the release's objects exist: what it reads must be a hook too,
        // of a lower weight, replaced on every upgrade.
        const own = object.metadata.annotations ?? {};
        const weight = (x: Record<string, string>) => Number(x['helm.sh/hook-weight'] ?? 0);
        if (!isHelmHookBefore(own) || weight(own) >= weight(a))
          out.push(`${describeObject(object)} is not a hook that runs before the migration`);
        else if (!(own['helm.sh/hook-delete-policy'] ?? '').includes('before-hook-creation'))
          out.push(`${describeObject(object)} is not replaced on each upgrade`);
      }
    }
    return out;
  },

  backup: (objects) => {
    const cron = find(objects, 'CronJob', 'reliability-api-backup');
    if (cron === undefined) return ['no CronJob/reliability-api-backup'];
    const out: string[] = [];
    if (cron.spec?.concurrencyPolicy !== 'Forbid')
      out.push(`concurrencyPolicy ${cron.spec?.concurrencyPolicy}`);
    const pod = cron.spec?.jobTemplate.spec?.template.spec;
    const [container] = pod?.containers ?? [];
    if (!/^(docker\.io\/(library\/)?)?postgres:\d/.test(container?.image ?? '')) {
      out.push(`image ${container?.image} is not a versioned postgres image`);
    }
    const script = [...(container?.command ?? []), ...(container?.args ?? [])].join(' ');
    if (!script.includes('pg_dump -Fc')) out.push('does not run pg_dump -Fc');
    const mount = container?.volumeMounts?.find((m) => {
      const claim = pod?.volumes?.find((v) => v.name === m.name)?.persistentVolumeClaim?.claimName;
      return claim !== undefined && find(objects, 'PersistentVolumeClaim', claim) !== undefined;
    });
    if (mount === undefined || mount.readOnly === true)
      out.push('writes to no PersistentVolumeClaim of the kit');
    else if (!script.includes(`${mount.mountPath}/`))
      out.push(`the dump is not written under ${mount.mountPath}`);
    if (container?.env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef === undefined) {
      out.push('DATABASE_URL is not read from the Secret');
    }
    return out;
  },
} satisfies CheckSet;
