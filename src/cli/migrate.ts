// `migrate up|down|status` against DATABASE_URL (or the embedded database).
import { createDatabase } from '../adapters/postgres/database.js';
import { migrateDown, migrateUp, migrationStatus } from '../adapters/postgres/migrator.js';
import type { Config } from '../config/schema.js';
import type { Log } from '../observability/logger.js';

export interface MigrateArgs {
  action: 'up' | 'down' | 'status';
  steps: number | 'all';
}

export async function migrate(
  config: Config,
  args: MigrateArgs,
  log: Log,
  print: (line: string) => void,
): Promise<void> {
  const database = await createDatabase({
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolSize: 1,
    // Migrations may legitimately run longer than a request's statement budget.
    statementTimeoutMs: 0,
    applicationName: 'reliability-api-migrate',
    logger: log,
  });
  try {
    if (args.action === 'up') {
      const applied = await migrateUp(database.db);
      print(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'up to date');
    } else if (args.action === 'down') {
      const reverted = await migrateDown(database.db, args.steps);
      print(reverted.length > 0 ? `reverted: ${reverted.join(', ')}` : 'nothing to revert');
    } else {
      for (const m of await migrationStatus(database.db)) {
        print(
          `${m.applied ? 'applied' : 'pending'}  ${m.name}${m.applied_at ? `  ${m.applied_at.toISOString()}` : ''}`,
        );
      }
    }
  } finally {
    await database.close();
  }
}
