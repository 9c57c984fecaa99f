// The tests' own configuration keeps their traffic on this machine: a test that forgot its stub fails at
// once instead of calling a public service from CI.
import { describe, expect, it } from 'vitest';
import { testConfig } from '../helpers/app.js';

describe('testConfig', () => {
  it('when a test names no beacon, then the beacon is a loopback port nothing listens on', () => {
    expect(new URL(testConfig().BEACON_URL).hostname).toBe('127.0.0.1');
  });

  it('when an outbound URL points off this machine, then the configuration is refused, naming the setting', () => {
    expect(() => testConfig({ BEACON_URL: 'https://api.drand.sh' })).toThrow(
      /BEACON_URL points off this machine/,
    );
    expect(() => testConfig({ TRIAGE_LLM_BASE_URL: 'https://api.openai.com/v1' })).toThrow(
      /TRIAGE_LLM_BASE_URL/,
    );
    expect(() => testConfig({ DATABASE_URL: 'postgres://db.example:5432/x' })).toThrow(/DATABASE_URL/);
  });

  it('when every URL is on loopback, then it is accepted', () => {
    const config = testConfig({
      BEACON_URL: 'http://127.0.0.1:4000',
      REDIS_URL: 'redis://localhost:6379',
      OTLP_ENDPOINT: 'http://[::1]:4318',
    });
    expect(config.REDIS_URL).toBe('redis://localhost:6379');
  });
});
