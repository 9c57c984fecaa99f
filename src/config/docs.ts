// Renders docs/configuration.md from the settings schema, so the documentation cannot drift from the code.
import { settings } from './schema.js';

const escape = (text: string) => text.replaceAll('|', '\\|');

export function renderConfigDocs(): string {
  const rows = Object.entries(settings).map(([name, spec]) => {
    const def =
      'defaultDoc' in spec && spec.defaultDoc !== undefined
        ? spec.defaultDoc
        : 'default' in spec && spec.default !== undefined
          ? `\`${spec.default}\``
          : 'unset';
    const notes = 'secret' in spec && spec.secret ? 'Secret: its value is never echoed in errors.' : '';
    return `| \`${name}\` | ${escape(def)} | ${escape(`${spec.description} ${notes}`.trim())} |`;
  });
  return `# Configuration

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`; a test keeps this file equal to the schema. -->

Every setting is read once at start-up by \`loadConfig\`, from (first match wins):

1. the environment variable \`NAME\`;
2. the file named by \`NAME_FILE\` (setting both \`NAME\` and \`NAME_FILE\` is an error);
3. the file \`NAME\` in \`SETTINGS_SECRETS_DIR\` (default \`/run/secrets\` when it exists): Docker and Kubernetes secrets;
4. \`.env\` in the working directory, in development only;
5. the default below.

An invalid configuration stops start-up with one message naming every bad setting, and exit code 2.
In \`staging\` and \`production\` start-up also refuses the default or a short (< 32 bytes) \`SECRET_KEY\`, the
embedded database (\`DATABASE_URL\` unset or \`pglite:\`) and \`RATE_LIMIT_STORAGE_URI=memory://\`.

| Setting | Default | Description |
| --- | --- | --- |
${rows.join('\n')}
`;
}
