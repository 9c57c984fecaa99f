// The one way an account comes to exist, whoever asks: the API (an admin, or a sign-up), the CLI's
// create-user and the demo seed. The same username rule, the same password policy, the same audit row.
import { Value } from '@sinclair/typebox/value';
import type { Kysely } from 'kysely';
import type { DatabaseSchema, Role } from '../../adapters/postgres/schema.js';
import { InvalidParametersError, conflict, type FieldProblem } from '../../lib/errors.js';
import { record, type AuditContext } from '../audit/repository.js';
import { passwordProblems, type PasswordPolicy } from '../auth/passwords.js';
import * as users from './repository.js';
import { Username } from './schemas.js';

export interface AccountRules {
  passwordPolicy: PasswordPolicy;
  hash: (password: string) => Promise<string>;
}

export interface NewAccount {
  username: string;
  password: string;
  role: Role;
}

/** What is wrong with a new account's username and (given a policy) password; empty when nothing is. */
export function accountProblems(account: NewAccount, policy?: PasswordPolicy): FieldProblem[] {
  const found: FieldProblem[] = [];
  // The API schema's own rule, checked here for the callers that do not come through HTTP.
  if (!Value.Check(Username, account.username)) {
    found.push({
      name: 'username',
      in: 'body',
      reason: 'must be 3 to 64 letters, digits, dots, underscores, @ or dashes',
    });
  }
  if (policy !== undefined) {
    const problems = passwordProblems(account.password, account.username, policy);
    if (problems.length > 0) found.push({ name: 'password', in: 'body', reason: problems.join('; ') });
  }
  return found;
}

/**
 * Creates the account and audits it (`user_created`). Throws a 400 naming the field for a bad username or
 * password, and a 409 for a taken username.
 */
export async function createAccount(
  db: Kysely<DatabaseSchema>,
  rules: AccountRules,
  account: NewAccount,
  context: AuditContext,
  details: Record<string, unknown> = {},
): Promise<users.User> {
  const problems = accountProblems(account, rules.passwordPolicy);
  if (problems.length > 0) throw new InvalidParametersError(problems);
  const user = await users.create(db, {
    username: account.username,
    password_hash: await rules.hash(account.password),
    role: account.role,
  });
  if (user === undefined) throw conflict(`username "${account.username}" is taken`);
  await record(db, 'user_created', context, user.id, { role: account.role, ...details });
  return user;
}
