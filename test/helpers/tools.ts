// Command-line tools that some deployment-kit checks use when they are installed: terraform (`fmt`) and
// Docker Compose (`config`, v2 as `docker compose`, v1 as `docker-compose`). Not every developer has them,
// so a missing one skips its check with a warning, even with CI=true. A CI job that installs them lists
// them in REQUIRE_TOOLS (comma-separated, as .ci/run and .github/workflows/ci.yml do), and there a missing
// tool fails instead of skipping.
import { spawnSync } from 'node:child_process';

export interface Tool {
  /** The name used in REQUIRE_TOOLS and in messages. */
  name: string;
  command: string;
  /** Arguments of a cheap command that exits 0 when the tool works. */
  probe: readonly string[];
}

export const TERRAFORM: Tool = { name: 'terraform', command: 'terraform', probe: ['version'] };
export const DOCKER_COMPOSE: Tool = {
  name: 'docker-compose',
  command: 'docker',
  probe: ['compose', 'version'],
};
/** Compose v1 (Debian's docker-compose 1.29), which .ci/run installs for the engine tests. */
export const DOCKER_COMPOSE_V1: Tool = {
  name: 'docker-compose-v1',
  command: 'docker-compose',
  probe: ['version', '--short'],
};

/** The tools REQUIRE_TOOLS names. */
export function requiredTools(env: NodeJS.ProcessEnv = process.env): Set<string> {
  return new Set(
    (env.REQUIRE_TOOLS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

export function toolAvailable(tool: Tool): boolean {
  const result = spawnSync(tool.command, [...tool.probe], { encoding: 'utf8', timeout: 15_000 });
  return result.status === 0;
}

/**
 * Whether the checks that need `tool` can run. A missing tool throws when REQUIRE_TOOLS names it, and
 * otherwise warns once on stderr and returns false (the caller skips).
 */
export function optionalTool(tool: Tool, env: NodeJS.ProcessEnv = process.env): boolean {
  if (toolAvailable(tool)) return true;
  if (requiredTools(env).has(tool.name)) {
    throw new Error(
      `${tool.name} is not installed (${tool.command} ${tool.probe.join(' ')} failed); REQUIRE_TOOLS names it`,
    );
  }
  process.stderr.write(`warning: ${tool.name} is not installed; the checks that run it are skipped\n`);
  return false;
}
