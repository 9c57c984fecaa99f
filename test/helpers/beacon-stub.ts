// A drand-compatible HTTP beacon on loopback for tests: serves /info, /public/latest and /public/{round},
// and can be told to answer, fail, hang, slow down or send garbage. Counts every request by path.
import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type StubMode = 'ok' | 'fail' | 'hang' | 'slow' | 'garbage';

export interface BeaconStub {
  readonly url: string;
  /** How the next requests are answered. */
  mode: StubMode;
  /** Status of `fail` answers. */
  failStatus: number;
  /** Delay of `slow` answers. */
  slowMs: number;
  /** The newest round; higher rounds are 404. */
  latestRound: number;
  /** The chain period /info reports, in seconds. */
  period: number;
  /** Paths requested so far, in order. */
  readonly requests: string[];
  /** Requests of one path so far. */
  count(path: string): number;
  /** The payload the beacon serves for a round. */
  payload(round: number): {
    round: number;
    randomness: string;
    signature: string;
    previous_signature: string;
  };
  close(): Promise<void>;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();
// 96 bytes like a BLS signature on G2, derived from the round so every round differs and is repeatable.
const signature = (round: number) =>
  Buffer.concat([0, 1, 2].map((i) => sha256(`round ${round} part ${i}`))).toString('hex');

export async function startBeaconStub(
  options: { latestRound?: number; period?: number } = {},
): Promise<BeaconStub> {
  const requests: string[] = [];
  const payload = (round: number) => {
    const sig = signature(round);
    return {
      round,
      randomness: sha256(Buffer.from(sig, 'hex')).toString('hex'),
      signature: sig,
      previous_signature: signature(round - 1),
    };
  };
  const send = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  const answer = (path: string, res: ServerResponse) => {
    if (stub.mode === 'fail') return send(res, stub.failStatus, { error: 'beacon failing' });
    if (stub.mode === 'garbage')
      return res.writeHead(200, { 'content-type': 'application/json' }).end('{"round": tru');
    if (path === '/info')
      return send(res, 200, {
        public_key: signature(0).slice(0, 96),
        period: stub.period,
        genesis_time: 1_692_803_367,
        hash: sha256('chain').toString('hex'),
        schemeID: 'bls-unchained-g1-rfc9380',
      });
    const match = /^\/public\/(latest|\d+)$/.exec(path);
    if (match === null) return send(res, 404, { error: 'not found' });
    const round = match[1] === 'latest' ? stub.latestRound : Number(match[1]);
    if (round < 1 || round > stub.latestRound) return send(res, 404, { error: 'round not found' });
    return send(res, 200, payload(round));
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push(path);
    if (stub.mode === 'hang') return;
    if (stub.mode === 'slow') setTimeout(() => answer(path, res), stub.slowMs);
    else answer(path, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const stub: BeaconStub = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mode: 'ok',
    failStatus: 500,
    slowMs: 200,
    latestRound: options.latestRound ?? 100,
    period: options.period ?? 30,
    requests,
    count: (path) => requests.filter((p) => p === path).length,
    payload,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return stub;
}
