// The logging surface the lower layers need. Both pino and Fastify's logger satisfy it, so an adapter or a
// service takes a Log without knowing which one it was given.
import type { BaseLogger } from 'pino';

export type Log = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;
