/** croot's version, from the package.json of the checkout or package these commands run from. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function crootVersion(from: string = __dirname): string {
  // bin/*.ts under ts-jest, dist/bin/*.js when built: package.json is one or two levels up.
  for (let dir = from, i = 0; i < 3; dir = dirname(dir), i++) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    if (pkg.name === 'croot' && typeof pkg.version === 'string') return pkg.version;
  }
  return 'unknown';
}
