// Table types for the typed query layer. Keep in step with migrations/.
import type { ColumnType, Generated } from 'kysely';

export type Role = 'admin' | 'user';

export interface UsersTable {
  id: Generated<string>;
  username: string;
  password_hash: string;
  role: Role;
  disabled: Generated<boolean>;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date>;
}

export interface DatabaseSchema {
  users: UsersTable;
}
