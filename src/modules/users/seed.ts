// SEED_DEMO_USER (development only): a demo admin with a random password, logged once at start-up.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import * as users from './repository.js';

export const DEMO_USERNAME = 'demo-admin';

export async function seedDemoUser(app: FastifyInstance): Promise<void> {
  if ((await users.findByUsername(app.database.db, DEMO_USERNAME)) !== undefined) {
    app.log.info(
      { username: DEMO_USERNAME },
      'demo admin already exists; its password was logged when it was created',
    );
    return;
  }
  const password = randomBytes(18).toString('base64url');
  await app.identity.auth.createUser(
    { principal: null, actorId: null, ip: null, userAgent: 'seed', requestId: null },
    DEMO_USERNAME,
    password,
    'admin',
  );
  // Deliberately logged (development only; refused elsewhere by the config): the only way to learn it.
  app.log.warn(
    { demo_username: DEMO_USERNAME, demo_password: password },
    'demo admin created; this password is shown once',
  );
}
