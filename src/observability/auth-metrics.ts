// auth_events_total{event}: sign-ins, refreshes, logouts, password changes, API keys and refused
// credentials, counted where they happen; docs/observability.md says what each event means.
import { Counter, type Registry } from 'prom-client';

// A fixed list: the label's cardinality is bounded by code, never by input.
export const AUTH_EVENTS = [
  'login_succeeded',
  'login_failed',
  'login_locked',
  'token_refreshed',
  'refresh_rejected',
  'refresh_reuse_detected',
  'logout',
  'password_changed',
  'api_key_created',
  'api_key_revoked',
  'api_key_auth_failed',
  'token_rejected',
] as const;
export type AuthEvent = (typeof AUTH_EVENTS)[number];

/** Counts one event. */
export type CountAuthEvent = (event: AuthEvent) => void;

/** Registers auth_events_total on the registry, every event's series at 0, and returns its counter. */
export function authEventCounter(registry: Registry): CountAuthEvent {
  const counter = new Counter({
    name: 'auth_events_total',
    help: 'Authentication events, by event (login_succeeded, login_failed, token_rejected, ...).',
    labelNames: ['event'],
    registers: [registry],
  });
  // Each series exists from the start (at 0), so rate() and increase() see the first event of a kind.
  const children = new Map(
    AUTH_EVENTS.map((event) => {
      const child = counter.labels(event);
      child.inc(0);
      return [event, child] as const;
    }),
  );
  return (event) => children.get(event)!.inc();
}
