// nginx in front of the replicas, with the site file users get (deploy/nginx/reliability-api.conf).
// Only its server lines, listen port and access log path are replaced, each replacement checked, so
// every other setting (retries, timeouts, keep-alive, request ids) is what this rig exercises.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onCleanup, runChecked, start, stop, until, type Child } from './processes.js';

const SITE = new URL('../../../deploy/nginx/reliability-api.conf', import.meta.url).pathname;

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  const matches = text.match(
    new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`),
  );
  if (matches === null) throw new Error(`deploy/nginx/reliability-api.conf has no ${what} to replace`);
  return text.replace(pattern, replacement);
}

/** The shipped site file with the rig's upstreams, port and log path. */
export function siteConfig(upstreams: string[], port: number, accessLog: string): string {
  let site = readFileSync(SITE, 'utf8');
  const lines = site.match(/^\s*server \S+:\d+ (.*);$/m);
  if (lines === null) throw new Error('deploy/nginx/reliability-api.conf has no upstream server lines');
  const parameters = lines[1]!;
  site = replaceOnce(
    site,
    /(^\s*server \S+:\d+ .*;\n)+/m,
    upstreams.map((u) => `    server ${u} ${parameters};\n`).join(''),
    'upstream server lines',
  );
  site = replaceOnce(site, /^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`, 'listen 80');
  site = replaceOnce(
    site,
    /access_log \S+ reliability_api_json;/,
    `access_log ${accessLog} reliability_api_json;`,
    'access_log',
  );
  return site;
}

export class Nginx {
  #child: Child | undefined;
  #upstreams: string[] = [];
  readonly #down = new Set<string>();
  private constructor(
    readonly directory: string,
    readonly port: number,
  ) {}

  #writeSite() {
    const servers = this.#upstreams.map((u) => (this.#down.has(u) ? `${u} down` : u));
    writeFileSync(
      path.join(this.directory, 'reliability-api.conf'),
      siteConfig(servers, this.port, this.accessLog),
    );
  }

  /**
   * Takes a replica out of the balancer (or puts it back) and reloads nginx gracefully: what a deploy
   * does before it stops a replica, as Kubernetes removes a terminating pod from its Service.
   */
  async setDown(upstream: string, down: boolean): Promise<void> {
    if (down) this.#down.add(upstream);
    else this.#down.delete(upstream);
    this.#writeSite();
    runChecked('nginx', [
      '-p',
      this.directory,
      '-c',
      path.join(this.directory, 'nginx.conf'),
      '-s',
      'reload',
    ]);
    // The reload is asynchronous: new workers take over within a moment, old ones finish their requests.
    await sleep(500);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get accessLog(): string {
    return path.join(this.directory, 'access.log');
  }

  static async create(upstreams: string[], port: number): Promise<Nginx> {
    const directory = mkdtempSync(path.join(tmpdir(), 'rig-nginx-'));
    const nginx = new Nginx(directory, port);
    onCleanup(async () => {
      if (nginx.#child !== undefined) await stop(nginx.#child, 'SIGQUIT', 5_000);
      rmSync(directory, { recursive: true, force: true });
    });
    mkdirSync(path.join(directory, 'temp'));
    nginx.#upstreams = upstreams;
    nginx.#writeSite();
    writeFileSync(
      path.join(directory, 'nginx.conf'),
      [
        'daemon off;',
        process.getuid?.() === 0 ? 'user root;' : '',
        'worker_processes 1;',
        `pid ${directory}/nginx.pid;`,
        `error_log ${directory}/error.log warn;`,
        'events { worker_connections 4096; }',
        'http {',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
          (t) => `  ${t}_temp_path ${directory}/temp/${t};`,
        ),
        `  include ${directory}/reliability-api.conf;`,
        '}',
        '',
      ].join('\n'),
    );
    nginx.#child = start('nginx', ['-p', directory, '-c', path.join(directory, 'nginx.conf')]);
    await until(
      'nginx',
      async () => {
        if (nginx.#child!.process.exitCode !== null) {
          throw new Error(
            `nginx exited: ${nginx.#child!.output()}${readFileSync(path.join(directory, 'error.log'), 'utf8')}`,
          );
        }
        try {
          await fetch(`${nginx.url}/health/live`, { signal: AbortSignal.timeout(1_000) });
          return true;
        } catch {
          return false;
        }
      },
      10_000,
    );
    return nginx;
  }

  errorLog(): string {
    try {
      return readFileSync(path.join(this.directory, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }
}
