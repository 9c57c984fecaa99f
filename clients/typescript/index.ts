// A typed client of the Reliability API: openapi-fetch over the types openapi-typescript generates from
// docs/openapi.json (`npm run openapi` regenerates schema.d.ts; a test fails when it is stale). Every path,
// parameter, body and answer is typed, errors included: an error's body is the API's problem+json.
import createFetchClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, operations, paths } from './schema.js';

/** The problem+json body (RFC 9457) of every error answer. */
export type Problem = components['schemas']['Problem'];

export type ReliabilityClient = Client<paths>;

/**
 * A client for the API at `baseUrl`. Pass `token` for a bearer access token or an API key (`rak_...`);
 * anything else openapi-fetch takes (a custom fetch, headers) goes through `options`.
 */
export function createClient(
  baseUrl: string,
  token?: string,
  options: ClientOptions = {},
): ReliabilityClient {
  const headers: Record<string, string> = { ...(options.headers as Record<string, string> | undefined) };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return createFetchClient<paths>({ ...options, baseUrl, headers });
}
