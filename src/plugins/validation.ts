// Where input validation lives: Ajv's options for every route schema, the translation of Ajv's errors into
// one problem entry per offending field, and the one check Ajv cannot make (a non-finite number).
import fp from 'fastify-plugin';
import type { FastifyServerOptions, preHandlerHookHandler } from 'fastify';
import { InvalidParametersError, type FieldProblem } from '../lib/errors.js';

/** Every error at once, nothing removed silently, query strings coerced, defaults filled in. */
export const AJV_OPTIONS: NonNullable<FastifyServerOptions['ajv']> = {
  customOptions: { allErrors: true, removeAdditional: false, coerceTypes: 'array', useDefaults: true },
};

const LOCATIONS: Record<string, FieldProblem['in']> = {
  querystring: 'query',
  params: 'path',
  headers: 'header',
  body: 'body',
};

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns Ajv's errors into one entry per offending field, each naming the field. */
export function fieldProblems(validation: AjvError[], context: string | undefined): FieldProblem[] {
  const where = LOCATIONS[context ?? 'body'] ?? 'body';
  const byName = new Map<string, string[]>();
  for (const error of validation) {
    let name = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
    let reason = error.message ?? error.keyword;
    if (error.keyword === 'required') {
      name = [name, String(error.params.missingProperty)].filter(Boolean).join('.');
      reason = 'is required';
    } else if (error.keyword === 'additionalProperties') {
      name = [name, String(error.params.additionalProperty)].filter(Boolean).join('.');
      reason = 'is not a known parameter';
    } else if (error.keyword === 'enum' && Array.isArray(error.params.allowedValues)) {
      reason = `must be one of ${error.params.allowedValues.join(', ')}`;
    }
    const reasons = byName.get(name || where) ?? [];
    if (!reasons.includes(reason)) reasons.push(reason);
    byName.set(name || where, reasons);
  }
  return [...byName].map(([name, reasons]) => ({ name, in: where, reason: reasons.join('; ') }));
}

/** Names of the integer or number properties of a querystring schema. */
function numericQueryParameters(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
  if (properties === undefined) return [];
  return Object.entries(properties)
    .filter(([, p]) => p.type === 'integer' || p.type === 'number')
    .map(([name]) => name);
}

export default fp(
  async (app) => {
    // Ajv coerces "1e309" to Infinity and then skips the minimum/maximum checks of that value, so a
    // non-finite number can reach a handler. Routes whose query has numeric parameters refuse it after
    // validation, naming the parameter; other routes pay nothing.
    app.addHook('onRoute', (route) => {
      const numeric = numericQueryParameters(route.schema?.querystring);
      if (numeric.length === 0) return;
      const refuseNonFinite: preHandlerHookHandler = (request, _reply, done) => {
        const query = request.query as Record<string, unknown>;
        for (const name of numeric) {
          const value = query[name];
          if (typeof value === 'number' && !Number.isFinite(value)) {
            return done(
              new InvalidParametersError([{ name, in: 'query', reason: 'must be a finite number' }]),
            );
          }
        }
        done();
      };
      const existing = route.preHandler;
      route.preHandler = existing === undefined ? [refuseNonFinite] : [refuseNonFinite, ...[existing].flat()];
    });
  },
  { name: 'validation' },
);
