// Which rate limit applies to a request: policies per route group and caller tier, the defaults, the
// operator's overrides (RATE_LIMITS) and per-API-key limits, compiled once into GCRA parameters and the
// IETF RateLimit-Policy header each answer carries.
import { gcraParams, type RatePolicy } from './gcra.js';

export type Tier = 'anonymous' | 'user' | 'api_key' | 'admin';
export type RouteGroup = 'api' | 'auth';

export const DEFAULT_POLICIES: Record<RouteGroup, Partial<Record<Tier, RatePolicy>>> = {
  api: {
    anonymous: { limit: 60, windowSeconds: 60, burst: 20 },
    user: { limit: 600, windowSeconds: 60, burst: 100 },
    api_key: { limit: 1200, windowSeconds: 60, burst: 200 },
    admin: { limit: 6000, windowSeconds: 60, burst: 1000 },
  },
  // Sign-in endpoints: a person logs in a few times a day; scripts hammering them are attacks.
  auth: { anonymous: { limit: 20, windowSeconds: 60, burst: 10 } },
};

/** A policy as RATE_LIMITS spells it. */
export interface PolicySetting {
  limit: number;
  window_seconds: number;
  burst: number;
}

/** RATE_LIMITS: overrides per group and tier, and limits per API key id. */
export type PolicyOverrides = Partial<
  Record<RouteGroup, Partial<Record<string, PolicySetting>>> & {
    api_keys: Partial<Record<string, PolicySetting>>;
  }
>;

export interface CompiledPolicy {
  name: string;
  intervalUs: number;
  capacityUs: number;
  policyHeader: string;
  windowSeconds: number;
}

function compile(name: string, p: RatePolicy): CompiledPolicy {
  return {
    name,
    ...gcraParams(p),
    policyHeader: `"${name}";q=${p.limit};w=${p.windowSeconds}`,
    windowSeconds: p.windowSeconds,
  };
}

const fromSetting = (p: PolicySetting): RatePolicy => ({
  limit: p.limit,
  windowSeconds: p.window_seconds,
  burst: p.burst,
});

export interface Policies {
  /** The policy for a group and tier, or for this API key when it has its own. */
  for(group: RouteGroup, tier: Tier, id: string): CompiledPolicy;
}

export function resolvePolicies(overrides: PolicyOverrides): Policies {
  // Looked up on every request: one map per group, so a lookup builds no key string.
  const table = new Map<RouteGroup, Map<string, CompiledPolicy>>();
  for (const group of ['api', 'auth'] as const) {
    const merged: Partial<Record<Tier, RatePolicy>> = { ...DEFAULT_POLICIES.api, ...DEFAULT_POLICIES[group] };
    for (const [tier, p] of Object.entries(overrides[group] ?? {}))
      if (p !== undefined) merged[tier as Tier] = fromSetting(p);
    const tiers = new Map<string, CompiledPolicy>();
    for (const [tier, p] of Object.entries(merged)) tiers.set(tier, compile(`${group}-${tier}`, p));
    table.set(group, tiers);
  }
  const perKey = new Map<string, CompiledPolicy>();
  for (const [id, p] of Object.entries(overrides.api_keys ?? {}))
    if (p !== undefined) perKey.set(id, compile(`api-key-${id.slice(0, 8)}`, fromSetting(p)));
  return {
    for: (group, tier, id) =>
      (tier === 'api_key' ? perKey.get(id) : undefined) ?? table.get(group)!.get(tier)!,
  };
}
