#!/usr/bin/env node
'use strict';
/**
 * Builds the native addon (native/build/Release/croot_native.node) with
 * node-gyp. Run by package.json's "install" script, from any cwd.
 *
 * Never downloads anything: when Node's own headers are installed next to the
 * running binary (<prefix>/include/node/node_api.h), they are passed to
 * node-gyp with --nodedir.
 *
 * Needs a C++17 compiler, make and python3 (node-gyp's own needs). npm hides
 * an install script's output unless it fails, so the line saying a build has
 * started also goes to the terminal when there is one.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const nativeDir = __dirname;
const packageRoot = path.resolve(nativeDir, '..');
const output = path.join(nativeDir, 'build', 'Release', 'croot_native.node');

function fail(message) {
  process.stderr.write(`croot native build failed: ${message}\n`);
  process.exit(1);
}

/** node-gyp's CLI: the package's own dependency first, then the copy bundled with npm. */
function findNodeGyp() {
  const tried = [];
  try {
    return require.resolve('node-gyp/bin/node-gyp.js', { paths: [packageRoot, nativeDir] });
  } catch (err) {
    tried.push(`node-gyp/bin/node-gyp.js from ${packageRoot}: ${err.code || err.message}`);
  }
  const npmBundled = [
    path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.resolve(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  if (process.env.npm_config_node_gyp) npmBundled.unshift(process.env.npm_config_node_gyp);
  for (const candidate of npmBundled) {
    if (fs.existsSync(candidate)) return candidate;
    tried.push(`${candidate}: not found`);
  }
  return fail(`node-gyp not found; tried:\n  ${tried.join('\n  ')}`);
}

/**
 * True when the addon exists and is newer than binding.gyp, every source and
 * the running Node binary (an ABI change needs a rebuild). `--force` or
 * CROOT_NATIVE_REBUILD=1 always rebuild.
 */
function upToDate() {
  if (process.argv.includes('--force') || process.env.CROOT_NATIVE_REBUILD === '1') return false;
  let built;
  try {
    built = fs.statSync(output).mtimeMs;
  } catch {
    return false;
  }
  const srcDir = path.join(nativeDir, 'src');
  const inputs = [path.join(nativeDir, 'binding.gyp'), process.execPath, ...fs.readdirSync(srcDir).map((f) => path.join(srcDir, f))];
  return inputs.every((f) => fs.statSync(f).mtimeMs <= built);
}

/** One line for the user: on stderr, and on the terminal npm would otherwise keep quiet. */
function announce(line) {
  process.stderr.write(`${line}\n`);
  if (process.env.npm_lifecycle_event === undefined || process.stderr.isTTY) return;
  try {
    const fd = fs.openSync('/dev/tty', 'w');
    try {
      fs.writeSync(fd, `${line}\n`);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // no terminal (CI, a service): stderr only
  }
}

function main() {
  if (upToDate()) {
    process.stdout.write(`croot native build: ${path.relative(process.cwd(), output) || output} is up to date\n`);
    return;
  }
  const nodeGyp = findNodeGyp();
  announce(
    'croot: building its native module with node-gyp (C++17 compiler, make and python3 needed; about a minute; ' +
      'npm shows the compiler output only if it fails: add --foreground-scripts to watch)',
  );
  const args = [nodeGyp, 'rebuild', '--jobs=max'];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const header = path.join(prefix, 'include', 'node', 'node_api.h');
  if (fs.existsSync(header)) {
    args.push(`--nodedir=${prefix}`);
  } else {
    process.stderr.write(`croot native build: ${header} not found; node-gyp may try to download Node's headers\n`);
  }
  const result = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: 'inherit' });
  if (result.error) fail(`could not run ${process.execPath} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.status}`;
    fail(`node-gyp rebuild (in ${nativeDir}) ${how}; see its output above`);
  }
  if (!fs.existsSync(output)) fail(`node-gyp reported success but ${output} does not exist`);
  process.stdout.write(`croot native build: ${path.relative(process.cwd(), output) || output}\n`);
}

main();
