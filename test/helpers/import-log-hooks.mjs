// Module customization hooks (node:module register): append every resolved module URL to $COVERS_IMPORT_LOG.
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (process.env.COVERS_IMPORT_LOG) appendFileSync(process.env.COVERS_IMPORT_LOG, `${r.url}\n`);
  return r;
}
