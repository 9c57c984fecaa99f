// Each replica runs in a network namespace of its own, joined to the host by a veth pair, so that a
// scenario can cut one replica off from PostgreSQL and Redis the way a network fault does: packets
// dropped by iptables inside that namespace, not connections refused. The host side of each pair is
// the address the replica uses for PostgreSQL and Redis; nginx reaches the replica at its side.
import { onCleanup, runChecked } from './processes.js';

export class ReplicaNetwork {
  private constructor(
    readonly name: string,
    /** The host's address on this link: where the replica finds PostgreSQL and Redis. */
    readonly hostAddress: string,
    /** The replica's address, where nginx sends requests. */
    readonly replicaAddress: string,
    private readonly hostLink: string,
  ) {}

  /** A network for replica `index` (1-based); `tag` keeps concurrent rigs apart. */
  static create(tag: number, index: number): ReplicaNetwork {
    const name = `rig${tag}r${index}`;
    const hostLink = `rig${tag}h${index}`;
    const peerLink = `rig${tag}p${index}`;
    // 10.(100 + tag % 150).index.0/24: distinct per rig and per replica.
    const subnet = `10.${100 + (tag % 150)}.${index}`;
    const network = new ReplicaNetwork(name, `${subnet}.1`, `${subnet}.2`, hostLink);
    onCleanup(() => network.destroy());
    runChecked('ip', ['netns', 'add', name]);
    runChecked('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', peerLink]);
    runChecked('ip', ['link', 'set', peerLink, 'netns', name]);
    runChecked('ip', ['addr', 'add', `${network.hostAddress}/24`, 'dev', hostLink]);
    runChecked('ip', ['link', 'set', hostLink, 'up']);
    network.exec('ip', ['addr', 'add', `${network.replicaAddress}/24`, 'dev', peerLink]);
    network.exec('ip', ['link', 'set', peerLink, 'up']);
    network.exec('ip', ['link', 'set', 'lo', 'up']);
    return network;
  }

  /** The command line that runs `command` inside this namespace (`ip netns exec` execs it: same pid). */
  wrap(command: string, args: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.name, command, ...args]];
  }

  exec(command: string, args: string[]): string {
    const [bin, full] = this.wrap(command, args);
    return runChecked(bin, full);
  }

  /** Drops every packet from the replica to these host ports (no RST, no ICMP: silence). */
  cut(ports: number[]): void {
    for (const port of ports) {
      this.exec('iptables', [
        '-A',
        'OUTPUT',
        '-p',
        'tcp',
        '-d',
        this.hostAddress,
        '--dport',
        String(port),
        '-j',
        'DROP',
      ]);
    }
  }

  restore(): void {
    this.exec('iptables', ['-F', 'OUTPUT']);
  }

  destroy(): void {
    try {
      runChecked('ip', ['link', 'del', this.hostLink]);
    } catch {
      // Gone with the namespace already.
    }
    try {
      runChecked('ip', ['netns', 'del', this.name]);
    } catch {
      // Never made.
    }
  }
}

/** Whether this process can make namespaces and drop packets (root with ip and iptables). */
export function networkFaultsPossible(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'iptables']) {
    try {
      runChecked('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}
