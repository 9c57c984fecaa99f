// Authentication on every request: reads a Bearer token (JWT or API key) or X-API-Key, checks it against
// the identity module's services and revocation registry, and enforces the route's `config.auth` rule.
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { forbidden, unauthorized, type AppError } from '../lib/errors.js';
import { ApiKeyService } from '../modules/api-keys/service.js';
import { ROLE_SCOPES, type AuthRule, type Principal } from '../modules/auth/principal.js';
import { InvalidTokenError } from '../modules/auth/tokens.js';

function credentialOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) throw unauthorized('Authorization must be "Bearer <token>"');
    return match[1];
  }
  const key = request.headers['x-api-key'];
  return typeof key === 'string' && key.length > 0 ? key : undefined;
}

function authorize(request: FastifyRequest, rule: AuthRule, principal: Principal): void {
  request.principal = principal;
  if (rule.session === true && principal.kind !== 'user')
    throw forbidden('this needs a user session, not an API key');
  if (rule.scope !== undefined && !principal.scopes.has(rule.scope)) {
    throw forbidden(`this needs the "${rule.scope}" scope`, rule.scope);
  }
}

export default fp(
  async (app) => {
    const { apiKeys, tokens, revocations, events } = app.identity;
    app.decorateRequest('principal', null);

    function rejected(reason: string): AppError {
      events.count('token_rejected');
      return unauthorized(reason);
    }

    async function authenticate(credential: string): Promise<Principal> {
      if (ApiKeyService.looksLikeKey(credential)) return apiKeys.authenticate(credential);
      let claims;
      try {
        claims = await tokens.verifyAccess(credential);
      } catch (error) {
        if (error instanceof InvalidTokenError) throw rejected(error.message);
        throw error;
      }
      if (revocations.isSessionRevoked(claims.sid)) throw rejected('session revoked');
      if (revocations.isUserDisabled(claims.sub)) throw rejected('user disabled');
      return {
        kind: 'user',
        userId: claims.sub,
        role: claims.role,
        sessionId: claims.sid,
        scopes: new Set(ROLE_SCOPES[claims.role]),
      };
    }

    // Callback style on purpose: an anonymous call to an open route (the common case of the random API)
    // returns synchronously, without the promise an async hook costs on every request.
    app.addHook('onRequest', (request, _reply, done) => {
      const rule = request.routeOptions.config.auth;
      if (rule === undefined) return done();
      let credential: string | undefined;
      try {
        credential = credentialOf(request);
      } catch (error) {
        events.count('token_rejected'); // an Authorization header that is not "Bearer <token>"
        return done(error as Error);
      }
      if (credential === undefined) {
        return rule.anonymous === true ? done() : done(unauthorized('credentials required', false));
      }
      authenticate(credential).then((principal) => {
        try {
          authorize(request, rule, principal);
          done();
        } catch (error) {
          done(error as Error);
        }
      }, done);
    });
  },
  { name: 'authentication', dependencies: ['identity'] },
);
