// A private Docker Engine for building and running the image on a machine without a Docker service
// (no systemd, no registry): dockerd as root with its own data root, exec root, socket and pidfile under
// one directory, stopped with everything it started. dockerd rewrites the host's iptables (a DROP policy
// on FORWARD, its own chains), adds the docker0 bridge and sets ip_forward; stop() puts all three back as
// they were found, so a test run leaves the machine's networking unchanged.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The Debian CLI (20.10, BuildKit built in); the one first on PATH may lack buildx. */
export const DOCKER_CLI = ['/usr/bin/docker', 'docker'].find((p) => p === 'docker' || existsSync(p))!;
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
// The links dockerd makes: its bridge, Compose networks' bridges and containers' veth ends. Nothing else
// is touched (other tests' namespaces and veth pairs may come and go meanwhile).
const DOCKER_LINK = /^(docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7})$/;

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface Engine {
  /** DOCKER_HOST for the CLI and Compose. */
  readonly host: string;
  /** The environment every docker or docker-compose command gets (DOCKER_HOST, BuildKit on). */
  readonly env: NodeJS.ProcessEnv;
  /** Runs the Docker CLI; throws with its output unless it exits 0. */
  docker(args: string[], options?: { input?: string; timeoutMs?: number }): string;
  /** Runs the Docker CLI and returns whatever happened. */
  tryDocker(args: string[], options?: { timeoutMs?: number }): RunResult;
  /** Stops dockerd and what it started, and restores the host's networking. */
  stop(): Promise<void>;
}

/** Why a private engine cannot start here, or undefined when it can. */
export function engineMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'dockerd must run as root';
  for (const tool of ['dockerd', 'iptables-save', 'iptables-restore']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (!existsSync('/usr/bin/docker'))
    return 'the Debian docker CLI (/usr/bin/docker, package docker.io) is not installed';
  return undefined;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 600_000) {
  const result = spawnSync(command, args, {
    env,
    input,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    status: result.status,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? String(result.error ?? ''),
  };
}

interface NetworkSnapshot {
  iptables: string;
  ipForward: string;
  links: Set<string>;
}

const links = () =>
  new Set(
    run('ip', ['-o', 'link', 'show'], process.env)
      .stdout.split('\n')
      .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined),
  );

function snapshot(): NetworkSnapshot {
  const saved = run('iptables-save', [], process.env);
  if (saved.status !== 0) throw new Error(`iptables-save failed: ${saved.stderr}`);
  return { iptables: saved.stdout, ipForward: readFileSync(IP_FORWARD, 'utf8').trim(), links: links() };
}

/**
 * The rules of an iptables-save dump as comparable lines ("table: rule"), without comments and packet
 * counters; a table with no rules, no chains of its own and every policy ACCEPT counts as absent (that is
 * what a table nobody loaded looks like once something has loaded and emptied it).
 */
export function iptablesRules(dump: string): string[] {
  const lines: string[] = [];
  let table = '';
  let body: string[] = [];
  const flush = () => {
    // Built-in chains read ":INPUT ACCEPT"; chains of its own ":DOCKER -"; rules "-A ...".
    const empty = body.every((line) => line.startsWith(':') && line.endsWith(' ACCEPT'));
    if (table !== '' && !empty) lines.push(...body.map((line) => `${table}: ${line}`));
    body = [];
  };
  for (const raw of dump.split('\n')) {
    const line = raw.replace(/\[\d+:\d+\]/g, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      flush();
      table = line.slice(1);
    } else if (line === 'COMMIT') {
      flush();
      table = '';
    } else body.push(line);
  }
  return lines;
}

/** The host's networking as a comparable value: iptables rules, ip_forward and Docker's links. */
export function networkState(): { rules: string[]; ipForward: string; dockerLinks: string[] } {
  const now = snapshot();
  return {
    rules: iptablesRules(now.iptables),
    ipForward: now.ipForward,
    dockerLinks: [...now.links].filter((l) => DOCKER_LINK.test(l)).sort(),
  };
}

const tablesOf = (dump: string) =>
  dump
    .split('\n')
    .filter((line) => line.startsWith('*'))
    .map((line) => line.slice(1));

function restore(before: NetworkSnapshot): string[] {
  const problems: string[] = [];
  const restored = run('iptables-restore', [], process.env, before.iptables);
  if (restored.status !== 0) problems.push(`iptables-restore failed: ${restored.stderr}`);
  // iptables-restore rewrites only the tables of the dump; a table dockerd loaded (nat, often) is emptied.
  const known = new Set(tablesOf(before.iptables));
  // Emptied means no rules, no chains of its own and every built-in chain's policy back to ACCEPT (dockerd
  // sets FORWARD to DROP, and a table nobody had loaded accepts everything).
  const now = run('iptables-save', [], process.env).stdout;
  for (const table of tablesOf(now)) {
    if (known.has(table)) continue;
    run('iptables', ['-t', table, '-F'], process.env);
    run('iptables', ['-t', table, '-X'], process.env);
    const section = now.split(`*${table}\n`)[1]?.split('\nCOMMIT')[0] ?? '';
    for (const chain of section.matchAll(/^:(\S+) (?!-)\S+/gm))
      run('iptables', ['-t', table, '-P', chain[1]!, 'ACCEPT'], process.env);
  }
  for (const link of links()) {
    if (before.links.has(link) || !DOCKER_LINK.test(link)) continue;
    const deleted = run('ip', ['link', 'delete', link], process.env);
    if (deleted.status !== 0 && links().has(link)) problems.push(`ip link delete ${link}: ${deleted.stderr}`);
  }
  writeFileSync(IP_FORWARD, `${before.ipForward}\n`);
  return problems;
}

/** Mount points at or below `directory` (containers' overlays, volumes, bind mounts), deepest first. */
function mountsUnder(directory: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === directory || m.startsWith(`${directory}/`)))
    .sort((a, b) => b.length - a.length);
}

/**
 * Starts dockerd under `directory` (created; removed by stop()) and waits until it answers. The data root
 * can be kept between runs with `keepData`, so base images built once are reused.
 */
export async function startEngine(directory: string, options: { keepData?: boolean } = {}): Promise<Engine> {
  const missing = engineMissing();
  if (missing !== undefined) throw new Error(`cannot start a Docker engine: ${missing}`);
  if (links().has('docker0')) {
    throw new Error('a docker0 bridge exists already: another Docker engine is running on this machine');
  }
  mkdirSync(directory, { recursive: true });
  const socket = path.join(directory, 'docker.sock');
  const host = `unix://${socket}`;
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '1' };
  const before = snapshot();
  const logFile = path.join(directory, 'dockerd.log');
  const log = openSync(logFile, 'a');
  let daemon: ChildProcess;
  try {
    daemon = spawn(
      'dockerd',
      [
        '--data-root',
        path.join(directory, 'data'),
        '--exec-root',
        path.join(directory, 'exec'),
        '--host',
        host,
        '--pidfile',
        path.join(directory, 'docker.pid'),
        '--storage-driver',
        'overlay2',
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
  } finally {
    closeSync(log);
  }
  const docker = (args: string[], opts: { input?: string; timeoutMs?: number } = {}) => {
    const result = run(DOCKER_CLI, args, env, opts.input, opts.timeoutMs);
    if (result.status !== 0) {
      throw new Error(`docker ${args.join(' ')} exited ${result.status}:\n${result.stderr}${result.stdout}`);
    }
    return result.stdout;
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const problems: string[] = [];
    if (daemon.exitCode === null) {
      // dockerd stops its containers (each with its own stop timeout) and containerd on SIGTERM.
      daemon.kill('SIGTERM');
      const deadline = Date.now() + 60_000;
      while (daemon.exitCode === null && daemon.signalCode === null && Date.now() < deadline)
        await sleep(100);
      if (daemon.exitCode === null && daemon.signalCode === null) {
        problems.push('dockerd did not stop within 60 s; killed');
        process.kill(-daemon.pid!, 'SIGKILL');
      }
    }
    // Shims of containers that outlived the daemon, found by the exec root in their command line.
    run('pkill', ['-KILL', '-f', path.join(directory, 'exec')], process.env);
    for (const mount of mountsUnder(directory)) run('umount', ['-l', mount], process.env);
    problems.push(...restore(before));
    const left = mountsUnder(directory);
    if (left.length > 0) {
      problems.push(`still mounted, not removed: ${left.join(', ')}`);
    } else if (options.keepData === true) {
      rmSync(path.join(directory, 'exec'), { recursive: true, force: true });
    } else {
      rmSync(directory, { recursive: true, force: true });
    }
    if (problems.length > 0) throw new Error(`stopping the Docker engine:\n${problems.join('\n')}`);
  };
  const started = Date.now();
  for (;;) {
    if (daemon.exitCode !== null) {
      await stop().catch(() => {});
      throw new Error(`dockerd exited ${daemon.exitCode}:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
    }
    if (run(DOCKER_CLI, ['info', '--format', '{{.ServerVersion}}'], env, undefined, 5_000).status === 0)
      break;
    if (Date.now() - started > 30_000) {
      await stop().catch(() => {});
      throw new Error(`dockerd did not answer within 30 s:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
    }
    await sleep(200);
  }
  return {
    host,
    env,
    docker,
    tryDocker: (args, opts = {}) => run(DOCKER_CLI, args, env, undefined, opts.timeoutMs),
    stop,
  };
}
