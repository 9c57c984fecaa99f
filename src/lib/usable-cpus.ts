// How many CPUs this process may use: the cgroup's CPU quota when one is set (a container limited to
// 1.5 CPUs may still see every core of its host), else what Node reports as available. For
// WEB_CONCURRENCY=auto: more workers than the quota only adds context switches.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export type ReadFile = (path: string) => string | undefined;

const readIfThere: ReadFile = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** The quota in CPUs (possibly fractional), or undefined when unlimited or unknown. */
export function cgroupCpuQuota(read: ReadFile = readIfThere): number | undefined {
  // cgroup v2: "max 100000" or "<quota> <period>".
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2 !== undefined && v2.length === 2) {
    const [quota, period] = v2;
    return quota === 'max' ? undefined : Number(quota) / Number(period);
  }
  // cgroup v1: cfs_quota_us is -1 when unlimited.
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim());
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
  if (Number.isFinite(quota) && quota > 0 && Number.isFinite(period) && period > 0) return quota / period;
  return undefined;
}

export function usableCpus(read: ReadFile = readIfThere, available = availableParallelism()): number {
  const quota = cgroupCpuQuota(read);
  return Math.max(1, Math.min(available, quota === undefined ? available : Math.ceil(quota)));
}
