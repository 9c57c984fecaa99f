// Writes docs/openapi.json, the OpenAPI document the service serves (`npm run openapi`). A test keeps the
// committed file equal to what the server answers at /openapi.json, so API changes show in review diffs.
import { writeFileSync } from 'node:fs';
import pino from 'pino';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { OPENAPI_DOCUMENT_ENV } from '../src/plugins/openapi.js';

const app = await buildApp(loadConfig(OPENAPI_DOCUMENT_ENV, { cwd: '/nonexistent' }), {
  logger: pino({ level: 'silent' }),
});
await app.ready();
writeFileSync(
  new URL('../docs/openapi.json', import.meta.url),
  `${JSON.stringify(app.swagger(), null, 2)}\n`,
);
await app.close();
