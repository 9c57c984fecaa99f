// One replica of the built service, as production runs it, inside its own network namespace.
import { CLI, cleanEnv } from '../../helpers/process.js';
import type { ReplicaNetwork } from './network.js';
import { onCleanup, start, stop, until, type Child } from './processes.js';

export const REPLICA_PORT = 8000;

export class Replica {
  #child: Child | undefined;
  /** Every process this replica has been, for the log lines of a failed scenario. */
  readonly outputs: (() => string)[] = [];

  constructor(
    readonly index: number,
    readonly network: ReplicaNetwork,
    private readonly env: Record<string, string>,
  ) {
    onCleanup(() => this.kill());
  }

  get url(): string {
    return `http://${this.network.replicaAddress}:${REPLICA_PORT}`;
  }

  get upstream(): string {
    return `${this.network.replicaAddress}:${REPLICA_PORT}`;
  }

  get running(): boolean {
    return (
      this.#child !== undefined &&
      this.#child.process.exitCode === null &&
      this.#child.process.signalCode === null
    );
  }

  /** Starts the process and resolves once /health/ready answers 200; returns the ms that took. */
  async start(): Promise<number> {
    const started = performance.now();
    const [bin, args] = this.network.wrap(process.execPath, [CLI, 'serve']);
    this.#child = start(bin, args, {
      env: cleanEnv({ ...this.env, HOST: this.network.replicaAddress, PORT: String(REPLICA_PORT) }),
    });
    const child = this.#child;
    this.outputs.push(() => child.output());
    await until(
      `replica ${this.index} ready`,
      async () => {
        if (!this.running) throw new Error(`replica ${this.index} exited: ${child.output().slice(-2_000)}`);
        return (await this.ready()) === 200;
      },
      30_000,
    );
    return performance.now() - started;
  }

  /** /health/ready's status, or 0 when it did not answer within 1 s. */
  async ready(): Promise<number> {
    try {
      const response = await fetch(`${this.url}/health/ready`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  }

  /** SIGTERM and wait: resolves with the exit code and how long the drain and shutdown took. */
  async terminate(): Promise<{ code: number | null; ms: number }> {
    const child = this.#child!;
    const started = performance.now();
    child.process.kill('SIGTERM');
    const { code } = await child.exited;
    return { code, ms: performance.now() - started };
  }

  async kill(): Promise<void> {
    if (this.#child !== undefined) await stop(this.#child, 'SIGKILL');
  }
}
