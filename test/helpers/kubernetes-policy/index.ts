// The rules every rendering of the application must keep, each a check that returns its violations: one
// policy for both sources of the manifests, the Kustomize kit (test/deploy/kubernetes-policy.test.ts) and
// the Helm chart (test/deploy/helm.test.ts). The checks live in one module per thing they police; this is
// the registry that runs them, in the order they have always been listed.
import { availabilityChecks } from './availability.js';
import { imageChecks } from './images.js';
import { jobChecks } from './jobs.js';
import { lifecycleChecks } from './lifecycle.js';
import { networkPolicyChecks } from './network-policy.js';
import { observabilityChecks } from './observability.js';
import { podSecurityChecks } from './pod-security.js';
import { secretsAndConfigChecks } from './secrets-and-config.js';
import { servicesAndIngressChecks } from './services-and-ingress.js';

export {
  API_IMAGE,
  APP,
  CONFIG_MAP,
  EXTRA_INGRESS_SOURCES,
  POD_UID,
  SERVICE_ACCOUNT,
  type AppKustomization,
  type Check,
} from './shared.js';

/** Every check of every module, each exactly once (the type refuses a missing, extra or retyped one). */
type Policy = typeof availabilityChecks &
  typeof imageChecks &
  typeof jobChecks &
  typeof lifecycleChecks &
  typeof networkPolicyChecks &
  typeof observabilityChecks &
  typeof podSecurityChecks &
  typeof secretsAndConfigChecks &
  typeof servicesAndIngressChecks;

export const checks = {
  deploymentStrategy: availabilityChecks.deploymentStrategy,
  imageTags: imageChecks.imageTags,
  apiImage: imageChecks.apiImage,
  probePaths: lifecycleChecks.probePaths,
  probeTiming: lifecycleChecks.probeTiming,
  preStop: lifecycleChecks.preStop,
  shutdownBudget: lifecycleChecks.shutdownBudget,
  resources: availabilityChecks.resources,
  scrapeAnnotations: observabilityChecks.scrapeAnnotations,
  nonRoot: podSecurityChecks.nonRoot,
  podIdentity: podSecurityChecks.podIdentity,
  seccomp: podSecurityChecks.seccomp,
  containerHardening: podSecurityChecks.containerHardening,
  tmpVolume: podSecurityChecks.tmpVolume,
  topologySpread: availabilityChecks.topologySpread,
  serviceAccount: podSecurityChecks.serviceAccount,
  secretSources: secretsAndConfigChecks.secretSources,
  externalSecret: secretsAndConfigChecks.externalSecret,
  noCommittedSecret: secretsAndConfigChecks.noCommittedSecret,
  configMap: secretsAndConfigChecks.configMap,
  services: servicesAndIngressChecks.services,
  ingress: servicesAndIngressChecks.ingress,
  autoscaler: availabilityChecks.autoscaler,
  disruptionBudget: availabilityChecks.disruptionBudget,
  networkPolicy: networkPolicyChecks.networkPolicy,
  migrationJob: jobChecks.migrationJob,
  backup: jobChecks.backup,
  monitoring: observabilityChecks.monitoring,
  labels: observabilityChecks.labels,
} satisfies { [K in keyof Policy]: Policy[K] };
