// Schemas of the beacon relay: our request and answer, and what we accept from the drand HTTP API
// (anything else it sends is an upstream failure, not something to pass on).
import { Type, type Static } from '@sinclair/typebox';

// Whole bytes of hex. The bound is far above any drand signature (96 bytes for BLS on G2) and keeps a
// garbage answer from being relayed at any size.
const Hex = (description: string) =>
  Type.String({ pattern: '^([0-9a-fA-F]{2})+$', maxLength: 1024, description });

/** No parameters: a typo such as `?round=5` is refused rather than silently ignored. */
export const NoQuery = Type.Object({}, { additionalProperties: false });

export const RoundParams = Type.Object(
  {
    round: Type.Integer({
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'A round of the beacon chain (1 is the first).',
    }),
  },
  { additionalProperties: false },
);

export const BeaconReply = Type.Object({
  round: Type.Integer({ minimum: 1 }),
  randomness: Hex("The round's randomness: SHA-256 of its signature."),
  signature: Hex('BLS signature of the round by the beacon network.'),
  previous_signature: Type.Optional(Hex('Signature of the previous round (chained beacons only).')),
  stale: Type.Boolean({
    description: 'True when the beacon could not be reached and this is the last round known to us.',
  }),
  fetched_at: Type.String({ format: 'date-time', description: 'When this relay fetched the round.' }),
});

/** `GET {BEACON_URL}/public/latest` and `/public/{round}`. */
export const UpstreamRound = Type.Object({
  round: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  randomness: Hex('randomness'),
  signature: Hex('signature'),
  previous_signature: Type.Optional(Hex('previous signature')),
});
export type UpstreamRound = Static<typeof UpstreamRound>;

/** `GET {BEACON_URL}/info`: only the period matters here. */
export const UpstreamInfo = Type.Object({ period: Type.Integer({ minimum: 1, maximum: 86_400 }) });
