// Lifecycle: the API's probes, and the shutdown sequence fitting in the grace period.
import { effectiveSetting, preStopSeconds } from '../kustomize.js';
import { apiTemplates, each, httpPort, PROBE_PATHS, type CheckSet } from './shared.js';

export const lifecycleChecks = {
  probePaths: (objects) =>
    each(apiTemplates(objects), (_t, c, where) =>
      Object.entries(PROBE_PATHS).flatMap(([probe, path]) => {
        const get = c[probe as keyof typeof PROBE_PATHS]?.httpGet;
        if (get === undefined) return [`${where}: no ${probe} with httpGet`];
        const out: string[] = [];
        if (get.path !== path) out.push(`${where}: ${probe} probes ${get.path}, not ${path}`);
        if (get.port !== 'http' && get.port !== httpPort(c))
          out.push(`${where}: ${probe} probes port ${get.port}`);
        return out;
      }),
    ),

  probeTiming: (objects) =>
    each(apiTemplates(objects), (_t, c, where) => {
      const out: string[] = [];
      const startup = c.startupProbe;
      const window = (startup?.failureThreshold ?? 3) * (startup?.periodSeconds ?? 10);
      if (window < 60 || window > 90)
        out.push(`${where}: the startup probe allows ${window} s, not about 60 s`);
      if (c.readinessProbe?.periodSeconds !== 5) {
        out.push(`${where}: readiness is probed every ${c.readinessProbe?.periodSeconds} s, not 5 s`);
      }
      return out;
    }),

  preStop: (objects) =>
    each(apiTemplates(objects), (_t, c, where) => {
      const seconds = preStopSeconds(c);
      return seconds === undefined || seconds <= 0 ? `${where}: no preStop sleep before SIGTERM` : undefined;
    }),

  shutdownBudget: (objects) =>
    each(apiTemplates(objects), (t, c, where) => {
      const grace = t.spec.terminationGracePeriodSeconds ?? 30;
      const preStop = preStopSeconds(c) ?? 0;
      const drain = Number(effectiveSetting(objects, c, 'SHUTDOWN_DRAIN_SECONDS'));
      const timeout = Number(effectiveSetting(objects, c, 'SHUTDOWN_TIMEOUT_SECONDS'));
      const budget = preStop + drain + timeout;
      return grace > budget
        ? undefined
        : `${where}: terminationGracePeriodSeconds ${grace} does not exceed preStop ${preStop} + drain ${drain} + shutdown timeout ${timeout} = ${budget}`;
    }),
} satisfies CheckSet;
