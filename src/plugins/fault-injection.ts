// Fault injection for drills and shutdown tests, off unless FAULT_INJECTION_ENABLED=true. A request may ask
// for a delay (X-Fault-Delay-Ms) and/or an error status (X-Fault-Status). Operational routes (probes,
// metrics, docs) are never affected, so a drill cannot take an instance out of rotation by accident.
import { setTimeout as sleep } from 'node:timers/promises';
import fp from 'fastify-plugin';
import { FaultInjectedError } from '../lib/errors.js';

// Long enough for any drill; short enough that a forgotten header cannot pin a connection for minutes.
export const MAX_FAULT_DELAY_MS = 60_000;

function headerNumber(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,6}$/.test(value)) return undefined;
  return Number(value);
}

export default fp(
  async (app) => {
    app.log.warn('fault injection is enabled: X-Fault-Delay-Ms and X-Fault-Status are honoured');
    app.addHook('preHandler', async (request) => {
      if (request.routeOptions.config.operational === true) return;
      const delay = headerNumber(request.headers['x-fault-delay-ms']);
      if (delay !== undefined && delay > 0) await sleep(Math.min(delay, MAX_FAULT_DELAY_MS));
      const status = headerNumber(request.headers['x-fault-status']);
      if (status !== undefined && status >= 400 && status <= 599) {
        throw new FaultInjectedError(status);
      }
    });
  },
  { name: 'fault-injection' },
);
