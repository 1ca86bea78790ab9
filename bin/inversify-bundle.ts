/**
 * Imported first by the entry points that build an inversify container
 * (local-view.ts for in-process commands, crootd.ts): makes `inversify`
 * the one-file build of it that `npm run build` writes to
 * dist/vendor/inversify.js (scripts/bundle-inversify.js), so the process
 * reads one file instead of some 240. The build is put in Node's module
 * cache under the file name `require('inversify')` resolves to, so every
 * `require('inversify')` of croot's, `croot/inversify` and a plugin's alike
 * get this one copy, as they would get the package.
 *
 * Nothing happens when the one file is not there (Jest runs the sources;
 * a checkout not built), when its version is not the installed package's
 * (node_modules changed since the build), or when inversify is already
 * loaded: `inversify` then loads as a package, as usual.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function useInversifyBundle(): void {
  try {
    const target = require.resolve('inversify');
    if (require.cache[target] !== undefined) return;
    const vendor = join(__dirname, '..', 'vendor');
    const built = (JSON.parse(readFileSync(join(vendor, 'inversify.json'), 'utf8')) as { version?: unknown }).version;
    // The package's CommonJS entry is lib/cjs/index.js: its package.json is two folders up.
    const installed = (JSON.parse(readFileSync(join(dirname(target), '..', '..', 'package.json'), 'utf8')) as { version?: unknown }).version;
    if (built === undefined || built !== installed) return;
    const bundle = join(vendor, 'inversify.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(bundle);
    const loaded = require.cache[bundle];
    if (loaded === undefined) return;
    require.cache[target] = loaded;
  } catch {
    // no build, or no inversify where croot runs from: the package loads as usual
  }
}

useInversifyBundle();
