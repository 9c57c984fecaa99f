// Who is calling: a user (through an access token) or an API key, with the scopes that caller holds.
import type { FastifyRequest } from 'fastify';
import type { Role } from '../../adapters/postgres/schema.js';
import type { AuditContext } from '../audit/repository.js';

export const SCOPES = ['random:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What each role may do; an API key holds the intersection of its scopes and its owner's role. */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  admin: ['random:read', 'admin'],
  user: ['random:read'],
};

export interface Principal {
  kind: 'user' | 'api_key';
  userId: string;
  role: Role;
  scopes: ReadonlySet<Scope>;
  /** The login session (refresh-token family) of a user principal. */
  sessionId?: string;
  apiKeyId?: string;
}

export interface RequestContext extends AuditContext {
  principal: Principal | null;
}

/** Requirements a route declares in `config.auth`. */
export interface AuthRule {
  /** Scope the caller must hold (admins hold every scope). */
  scope?: Scope;
  /** Calls without credentials are let through (bad credentials never are). */
  anonymous?: boolean;
  /** Only a user's own login session will do (not an API key): password change, logout. */
  session?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, once the authentication hook has run; null for an anonymous call. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    auth?: AuthRule;
  }
}

/** Who did it, from where: what the audit log and the services record of a request. */
export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent'];
  return {
    principal: request.principal,
    actorId: request.principal?.userId ?? null,
    ip: request.ip,
    userAgent: typeof agent === 'string' ? agent : null,
    requestId: request.id,
  };
}
