// The ordered list of migrations. Names are numbered; each module exports up() and down().
// A static list (not a directory scan) so the build and the image ship exactly what is listed here.
import type { Migration } from 'kysely';
import * as m0001 from './0001_users.js';
import * as m0002 from './0002_identity.js';
import * as m0003 from './0003_idempotency_keys.js';

export const migrations: Record<string, Migration> = {
  '0001_users': m0001,
  '0002_identity': m0002,
  '0003_idempotency_keys': m0003,
};
