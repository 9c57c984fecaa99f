// Pod security: who the pods run as, what their containers may do, and their service account.
import { find, podTemplates } from '../kustomize.js';
import { each, POD_UID, SERVICE_ACCOUNT, type CheckSet } from './shared.js';

export const podSecurityChecks = {
  nonRoot: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const pod = t.spec.securityContext ?? {};
      const own = c.securityContext ?? {};
      const uid = own.runAsUser ?? pod.runAsUser;
      const gid = own.runAsGroup ?? pod.runAsGroup;
      const out: string[] = [];
      if ((own.runAsNonRoot ?? pod.runAsNonRoot) !== true) out.push(`${where}: runAsNonRoot is not true`);
      if (uid === undefined || uid === 0) out.push(`${where}: runs as user ${uid ?? "the image's"}`);
      if (gid === undefined || gid === 0) out.push(`${where}: runs as group ${gid ?? "the image's"}`);
      if (pod.fsGroup === 0) out.push(`${where}: fsGroup is 0`);
      return out;
    }),

  podIdentity: (objects) => {
    return podTemplates(objects).flatMap((t) => {
      const pod = t.spec.securityContext ?? {};
      return (['runAsUser', 'runAsGroup', 'fsGroup'] as const)
        .filter((k) => pod[k] !== POD_UID)
        .map((k) => `${t.owner}: ${k} is ${pod[k]}, not ${POD_UID}`);
    });
  },

  seccomp: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const type = c.securityContext?.seccompProfile?.type ?? t.spec.securityContext?.seccompProfile?.type;
      return type === 'RuntimeDefault'
        ? undefined
        : `${where}: seccomp profile is ${type}, not RuntimeDefault`;
    }),

  containerHardening: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const sc = c.securityContext ?? {};
      const out: string[] = [];
      if (sc.readOnlyRootFilesystem !== true) out.push(`${where}: root filesystem is writable`);
      if (sc.allowPrivilegeEscalation !== false) out.push(`${where}: privilege escalation is allowed`);
      if (sc.privileged === true) out.push(`${where}: privileged`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL'))
        out.push(`${where}: capabilities are not all dropped`);
      if ((sc.capabilities?.add ?? []).length > 0)
        out.push(`${where}: adds capabilities ${sc.capabilities?.add?.join(', ')}`);
      if (t.spec.hostNetwork === true || t.spec.hostPID === true || t.spec.hostIPC === true) {
        out.push(`${t.owner}: shares a host namespace`);
      }
      return out;
    }),

  tmpVolume: (objects) =>
    each(podTemplates(objects), (t, c, where) => {
      const mount = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
      const volume = t.spec.volumes?.find((v) => v.name === mount?.name);
      return volume?.emptyDir === undefined ? `${where}: no emptyDir mounted at /tmp` : undefined;
    }),

  serviceAccount: (objects) => {
    const out = podTemplates(objects).flatMap((t) => [
      ...(t.spec.serviceAccountName === SERVICE_ACCOUNT
        ? []
        : [`${t.owner}: service account ${t.spec.serviceAccountName}`]),
      ...(t.spec.automountServiceAccountToken === false
        ? []
        : [`${t.owner}: mounts a service account token`]),
    ]);
    const account = find(objects, 'ServiceAccount', SERVICE_ACCOUNT);
    if (account === undefined) out.push(`no ServiceAccount/${SERVICE_ACCOUNT}`);
    else if (account.automountServiceAccountToken !== false)
      out.push(`ServiceAccount/${SERVICE_ACCOUNT} mounts its token`);
    return out;
  },
} satisfies CheckSet;
