// The beacon relay's story: answer a round from the cache when we can, else fetch it from the drand HTTP
// API through the resilient client; when the beacon is down, answer the last latest round we know
// (marked stale) rather than fail, and say when to come back when we know nothing.
import { Value } from '@sinclair/typebox/value';
import { OutboundError, type OutboundClient } from '../../adapters/http/outbound.js';
import type { FallbackCache } from '../../adapters/cache/fallback-cache.js';
import { beaconInvalid, beaconUnavailable, notFound } from '../../lib/errors.js';
import type { Clock } from '../../lib/clock.js';
import type { Log } from '../../lib/log.js';
import { UpstreamInfo, UpstreamRound } from './schemas.js';

export interface Beacon {
  round: number;
  randomness: string;
  signature: string;
  previous_signature?: string;
  fetched_at: string;
}

/** Where an answer came from: `miss` fetched now, `hit` the cache, `stale` the fallback. */
export type CacheStatus = 'hit' | 'miss' | 'stale';
export interface BeaconAnswer {
  beacon: Beacon;
  cache: CacheStatus;
}

// The League of Entropy mainnet period, used until the beacon's /info says otherwise.
const DEFAULT_PERIOD_SECONDS = 30;
// A round never changes, so only space bounds how long it is worth keeping.
const ROUND_TTL_MS = 24 * 3600 * 1000;

const KEYS = { latest: 'latest', lastKnown: 'last-latest', round: (n: number) => `round:${n}` };

/** The beacon answered, but not with what its API promises. */
class UpstreamInvalidError extends Error {}

export class BeaconService {
  #periodSeconds: number | undefined;
  #lastKnown: Beacon | undefined;
  #refreshing: Promise<BeaconAnswer> | undefined;

  constructor(
    private readonly deps: { client: OutboundClient; cache: FallbackCache; log: Log; clock: Clock },
  ) {}

  async latest(): Promise<BeaconAnswer> {
    const cached = await this.deps.cache.get<Beacon>(KEYS.latest);
    if (cached !== undefined) {
      this.#remember(cached);
      return { beacon: cached, cache: 'hit' };
    }
    // Requests that miss together share one upstream call.
    this.#refreshing ??= this.#refreshLatest().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async round(round: number): Promise<BeaconAnswer> {
    const cached = await this.deps.cache.get<Beacon>(KEYS.round(round));
    if (cached !== undefined) return { beacon: cached, cache: 'hit' };
    let beacon: Beacon;
    try {
      beacon = await this.#fetch(`/public/${round}`, round);
    } catch (error) {
      throw this.#unavailable(error);
    }
    await this.deps.cache.set(KEYS.round(round), beacon, ROUND_TTL_MS);
    return { beacon, cache: 'miss' };
  }

  async #refreshLatest(): Promise<BeaconAnswer> {
    let beacon: Beacon;
    try {
      beacon = await this.#fetch('/public/latest');
    } catch (error) {
      const fallback = await this.#lastKnownLatest();
      if (fallback === undefined) throw this.#unavailable(error);
      return { beacon: fallback, cache: 'stale' };
    }
    const periodSeconds = await this.#period();
    this.#remember(beacon);
    // A new round comes once per period: until then the latest round is still the latest.
    await Promise.all([
      this.deps.cache.set(KEYS.latest, beacon, periodSeconds * 1000),
      this.deps.cache.set(KEYS.lastKnown, beacon),
      this.deps.cache.set(KEYS.round(beacon.round), beacon, ROUND_TTL_MS),
    ]);
    return { beacon, cache: 'miss' };
  }

  async #fetch(path: string, expectedRound?: number): Promise<Beacon> {
    const response = await this.deps.client.request({ path });
    if (response.status === 404 && expectedRound !== undefined)
      throw notFound(`Round ${expectedRound} is not available from the beacon`);
    const body = response.body;
    if (response.status !== 200 || !Value.Check(UpstreamRound, body))
      throw new UpstreamInvalidError(`the beacon answered ${response.status} with an unexpected payload`);
    if (expectedRound !== undefined && body.round !== expectedRound)
      throw new UpstreamInvalidError(`asked for round ${expectedRound}, the beacon answered ${body.round}`);
    return {
      round: body.round,
      randomness: body.randomness,
      signature: body.signature,
      ...(body.previous_signature === undefined ? {} : { previous_signature: body.previous_signature }),
      fetched_at: new Date(this.deps.clock.now()).toISOString(),
    };
  }

  /** The chain's period from /info, fetched once; the default while the beacon cannot tell us. */
  async #period(): Promise<number> {
    if (this.#periodSeconds !== undefined) return this.#periodSeconds;
    try {
      const response = await this.deps.client.request({ path: '/info' });
      if (response.status === 200 && Value.Check(UpstreamInfo, response.body))
        return (this.#periodSeconds = response.body.period);
    } catch {
      // the default below; asked again on the next refresh
    }
    return DEFAULT_PERIOD_SECONDS;
  }

  /** The newest latest round known: this instance's, or the shared cache's when another instance saw newer. */
  async #lastKnownLatest(): Promise<Beacon | undefined> {
    const shared = await this.deps.cache.get<Beacon>(KEYS.lastKnown);
    if (shared !== undefined) this.#remember(shared);
    return this.#lastKnown;
  }

  #remember(beacon: Beacon): void {
    if (this.#lastKnown === undefined || beacon.round > this.#lastKnown.round) this.#lastKnown = beacon;
  }

  #unavailable(error: unknown): unknown {
    if (error instanceof UpstreamInvalidError) {
      this.deps.log.warn({ err: error }, 'beacon answered an invalid payload');
      return beaconInvalid();
    }
    if (!(error instanceof OutboundError)) return error;
    // No /info call here: the beacon is down, and asking would only add a failure and a wait.
    const retryAfter = error.retryAfterSeconds ?? this.#periodSeconds ?? DEFAULT_PERIOD_SECONDS;
    return beaconUnavailable(retryAfter);
  }
}
