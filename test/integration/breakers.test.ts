// The circuit-breaker admin API through the real app: who may use it, listing, and forcing a breaker open,
// closed or reset, seen through the beacon relay (its dependency is a stub beacon on loopback).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { startBeaconStub, type BeaconStub } from '../helpers/beacon-stub.js';
import { bearer, createUser, login } from '../helpers/identity.js';
import { PROBLEM } from '../helpers/problem.js';

let t: TestApp;
let stub: BeaconStub;
let admin: Record<string, string>;
let user: Record<string, string>;

beforeAll(async () => {
  stub = await startBeaconStub();
  t = await buildTestApp({ BEACON_URL: stub.url, BREAKER_COOLDOWN_SECONDS: '60' });
  admin = bearer((await login(t.app, (await createUser(t.app, 'admin')).username)).access_token);
  user = bearer((await login(t.app, (await createUser(t.app, 'user')).username)).access_token);
});
afterAll(async () => {
  await t?.app.close();
  await stub?.close();
});

const list = (headers: Record<string, string> = admin) =>
  t.app.inject({ url: '/v1/admin/breakers', headers });
const control = (name: string, action: string, headers: Record<string, string> = admin) =>
  t.app.inject({ method: 'POST', url: `/v1/admin/breakers/${name}/${action}`, headers });
const beaconRound = (n: number) => t.app.inject({ url: `/v1/beacon/rounds/${n}` });

describe('circuit breaker admin API', () => {
  it('when no token is sent, then 401, and for a plain user 403, on every route', async () => {
    for (const call of [
      () => list({}),
      () => control('beacon', 'open', {}),
      () => control('beacon', 'reset', {}),
    ])
      expect((await call()).statusCode).toBe(401);
    for (const call of [
      () => list(user),
      () => control('beacon', 'open', user),
      () => control('beacon', 'close', user),
    ]) {
      const response = await call();
      expect(response.statusCode).toBe(403);
      expect(response.headers['content-type']).toBe(PROBLEM);
    }
    // a refused call changed nothing
    expect((await list()).json().data.find((b: { name: string }) => b.name === 'beacon').state).toBe(
      'closed',
    );
  });

  it('when an admin lists the breakers, then every dependency is there with its state and counts', async () => {
    await beaconRound(3);
    const response = await list();
    expect(response.statusCode).toBe(200);
    const beacon = response.json().data.find((b: { name: string }) => b.name === 'beacon');
    expect(beacon).toMatchObject({
      name: 'beacon',
      state: 'closed',
      origin: stub.url,
      consecutive_failures: 0,
      opened_at: null,
      half_open_at: null,
    });
    expect(beacon.successes).toBeGreaterThanOrEqual(1);
  });

  it('when an admin opens a breaker, then calls fail fast without reaching the dependency, until it is closed', async () => {
    const opened = await control('beacon', 'open');
    expect(opened.statusCode).toBe(200);
    expect(opened.json()).toMatchObject({ name: 'beacon', state: 'isolated' });
    expect(opened.json().opened_at).not.toBeNull();
    expect((await t.app.inject({ url: '/metrics' })).body).toContain(
      'circuit_breaker_state{name="beacon"} 1',
    );

    const before = stub.requests.length;
    const refused = await beaconRound(11);
    expect(refused.statusCode).toBe(503);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(stub.requests.length).toBe(before);

    const closed = await control('beacon', 'close');
    expect(closed.json()).toMatchObject({ state: 'closed', opened_at: null });
    expect((await beaconRound(11)).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/metrics' })).body).toContain(
      'circuit_breaker_state{name="beacon"} 0',
    );
  });

  it('when an admin resets a breaker, then it is closed with its counts zeroed', async () => {
    await control('beacon', 'open');
    await beaconRound(12);
    const reset = await control('beacon', 'reset');
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toMatchObject({
      state: 'closed',
      calls: 0,
      successes: 0,
      failures: 0,
      rejections: 0,
      last_failure: null,
    });
  });

  it('when the breaker name is unknown, then 404 problem+json', async () => {
    const response = await control('no-such-dependency', 'open');
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json().detail).toContain('no-such-dependency');
  });

  it('when the action is unknown, then 404 and nothing changes', async () => {
    expect((await control('beacon', 'explode')).statusCode).toBe(404);
    expect((await list()).json().data.find((b: { name: string }) => b.name === 'beacon').state).toBe(
      'closed',
    );
  });
});
