#!/usr/bin/env node
/**
 * Writes dist/vendor/inversify.js: croot's inversify (the version in
 * node_modules, its @inversifyjs/* packages included) as one CommonJS file,
 * made by esbuild, and dist/vendor/inversify.json with that version.
 * inversify's CommonJS build is some 240 files, and Node spends most of a
 * one-shot `croot` command's start resolving and reading them; the one file
 * loads the same code in a fraction of that. bin/inversify-bundle.ts hands
 * it out as `inversify` to croot's entry points. reflect-metadata stays
 * outside (croot's own dependency, one copy for the process).
 *
 *   node scripts/bundle-inversify.js     (npm run build and prepare run it after tsc)
 */
'use strict';
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const esbuild = require('esbuild');

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'dist', 'vendor');
const entry = require.resolve('inversify', { paths: [ROOT] });
// inversify's package.json is not in its `exports`: read it beside the entry (lib/cjs/index.js).
const version = JSON.parse(readFileSync(join(dirname(entry), '..', '..', 'package.json'), 'utf8')).version;

mkdirSync(OUT, { recursive: true });
esbuild.buildSync({
  entryPoints: [entry],
  outfile: join(OUT, 'inversify.js'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['reflect-metadata', 'reflect-metadata/*'],
  banner: { js: `// inversify ${version} and its @inversifyjs packages in one file (scripts/bundle-inversify.js); MIT, see their package.json.` },
  logLevel: 'warning',
});
writeFileSync(join(OUT, 'inversify.json'), `${JSON.stringify({ version })}\n`);
