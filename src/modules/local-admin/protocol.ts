// The local admin channel's requests and answers, shared by the server (plugin.ts) and the CLI that calls it
// (cli/local-admin.ts). HTTP over a Unix socket that only the data directory's owner can open.
import type { Role } from '../../adapters/postgres/schema.js';
import type { MigrationState } from '../../adapters/postgres/migrator.js';

export const LOCAL_ADMIN_PATHS = {
  users: '/users',
  migrations: '/migrations',
  backup: '/backup',
} as const;

export interface CreateUserRequest {
  username: string;
  password: string;
  role: Role;
}

export interface CreatedUser {
  id: string;
  username: string;
  role: Role;
}

export type MigrationStatusAnswer = (Omit<MigrationState, 'applied_at'> & { applied_at: string | null })[];

/** Every refusal: the status, and a one-line reason the CLI prints as it is. */
export interface LocalAdminError {
  status: number;
  detail: string;
}
