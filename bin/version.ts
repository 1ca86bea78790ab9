/** croot's version and install folder, from the package.json of the checkout or package these commands run from. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The folder of croot's package.json (the checkout, or the installed package). */
export function crootPackageDir(from: string = __dirname): string {
  // bin/*.ts under ts-jest, dist/bin/*.js when built: package.json is one or two levels up.
  for (let dir = from, i = 0; i < 3; dir = dirname(dir), i++) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown };
    if (pkg.name === 'croot') return dir;
  }
  return dirname(dirname(from));
}

export function crootVersion(from: string = __dirname): string {
  try {
    const pkg = JSON.parse(readFileSync(join(crootPackageDir(from), 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
    if (pkg.name === 'croot' && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // no package.json where it should be
  }
  return 'unknown';
}
