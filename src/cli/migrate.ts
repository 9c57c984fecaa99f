// `migrate up|down|status` against DATABASE_URL (or the embedded database). While a server owns the embedded
// database, `status` asks that server; `up` and `down` refuse: a schema must not change under a running
// server (it applies pending migrations itself when it starts in development and test).
import { migrateDown, migrateUp, migrationStatus } from '../adapters/postgres/migrator.js';
import type { Config } from '../config/schema.js';
import { LOCAL_ADMIN_PATHS, type MigrationStatusAnswer } from '../modules/local-admin/protocol.js';
import type { Log } from '../lib/log.js';
import { expectSuccess, openDatabaseOrChannel } from './local-admin.js';

export interface MigrateArgs {
  action: 'up' | 'down' | 'status';
  steps: number | 'all';
}

function statusLine(m: { name: string; applied: boolean; applied_at: string | null }): string {
  return `${m.applied ? 'applied' : 'pending'}  ${m.name}${m.applied_at ? `  ${m.applied_at}` : ''}`;
}

export async function migrate(
  config: Config,
  args: MigrateArgs,
  log: Log,
  print: (line: string) => void,
): Promise<void> {
  const access = await openDatabaseOrChannel({
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolSize: 1,
    // Migrations may legitimately run longer than a request's statement budget.
    statementTimeoutMs: 0,
    applicationName: 'reliability-api-migrate',
    owner: `reliability-api migrate ${args.action}`,
    logger: log,
  });
  if ('channel' in access) {
    if (args.action !== 'status') throw access.channel.inUse;
    const states = expectSuccess<MigrationStatusAnswer>(
      await access.channel.request('GET', LOCAL_ADMIN_PATHS.migrations),
    );
    for (const m of states) print(statusLine(m));
    return;
  }
  const { database } = access;
  try {
    if (args.action === 'up') {
      const applied = await migrateUp(database.db);
      print(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'up to date');
    } else if (args.action === 'down') {
      const reverted = await migrateDown(database.db, args.steps);
      print(reverted.length > 0 ? `reverted: ${reverted.join(', ')}` : 'nothing to revert');
    } else {
      for (const m of await migrationStatus(database.db)) {
        print(statusLine({ ...m, applied_at: m.applied_at?.toISOString() ?? null }));
      }
    }
  } finally {
    await database.close();
  }
}
