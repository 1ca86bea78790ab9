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
 * Skips the compile only when the addon exists and the SHA-256 of its inputs
 * recorded next to it (croot_native.node.inputs-sha256) matches the inputs
 * now; `--clean`, CROOT_NATIVE_CLEAN=1 and CI always compile from scratch.
 *
 * Needs a C++17 compiler, make and python3 (node-gyp's own needs). npm hides
 * an install script's output unless it fails, so the line saying a build has
 * started also goes to the terminal when there is one.
 */
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const nativeDir = __dirname;
const packageRoot = path.resolve(nativeDir, '..');
const output = path.join(nativeDir, 'build', 'Release', 'croot_native.node');
/** The input hash of the build in `output`, written after it succeeded. */
const stamp = `${output}.inputs-sha256`;

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

/** Whether this is a CI run: `CI` set to anything but empty, `false` or `0` (test/support/components.ts's rule). */
function isCI() {
  const value = String(process.env.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== 'false' && value !== '0';
}

/**
 * Whether to throw the old build away and compile from scratch: `--clean`
 * (or its old name `--force`), CROOT_NATIVE_CLEAN=1 (or CROOT_NATIVE_REBUILD=1),
 * and always in CI, so a stale addon can never hide a broken toolchain there.
 */
function cleanRequested() {
  const flag = (name) => process.env[name] === '1';
  if (process.argv.includes('--clean') || process.argv.includes('--force')) return '--clean';
  if (flag('CROOT_NATIVE_CLEAN') || flag('CROOT_NATIVE_REBUILD')) return 'CROOT_NATIVE_CLEAN=1';
  if (isCI()) return 'CI';
  return undefined;
}

/** Every file under `dir`, recursively, sorted (so the hash does not depend on readdir's order). */
function filesUnder(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else out.push(full);
  }
  return out.sort();
}

/**
 * What the addon is built from, as one SHA-256: the bytes of binding.gyp and
 * of every file under src/, node-addon-api's version (its headers are
 * compiled in), and the running Node's version, ABI, platform and arch.
 * Recorded next to the addon after a build; a build is up to date only when
 * the recorded hash equals this one (mtimes can make an old build look new).
 */
function inputHash() {
  const hash = crypto.createHash('sha256');
  const feed = (label, bytes) => {
    hash.update(`${label}\0${bytes.length}\0`);
    hash.update(bytes);
  };
  for (const file of [path.join(nativeDir, 'binding.gyp'), ...filesUnder(path.join(nativeDir, 'src'))]) {
    feed(path.relative(nativeDir, file), fs.readFileSync(file));
  }
  let addonApi = 'unknown';
  try {
    addonApi = require(require.resolve('node-addon-api/package.json', { paths: [packageRoot, nativeDir] })).version;
  } catch {
    // node-gyp will fail on the include path anyway and say so.
  }
  feed('node-addon-api', Buffer.from(addonApi));
  feed('node', Buffer.from(`${process.version} abi ${process.versions.modules} ${process.platform} ${process.arch}`));
  return hash.digest('hex');
}

/** The hash recorded by the last successful build, or undefined. */
function recordedHash() {
  try {
    return fs.readFileSync(stamp, 'utf8').trim();
  } catch {
    return undefined;
  }
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
  const shown = path.relative(process.cwd(), output) || output;
  const wanted = inputHash();
  const clean = cleanRequested();
  if (clean === undefined && fs.existsSync(output) && recordedHash() === wanted) {
    process.stdout.write(`croot native build: ${shown} is up to date (inputs ${wanted.slice(0, 12)})\n`);
    return;
  }
  // Whatever happens next, the old addon must not survive as if it were this build.
  fs.rmSync(path.join(nativeDir, 'build'), { recursive: true, force: true });
  const nodeGyp = findNodeGyp();
  announce(
    `croot: building its native module with node-gyp from scratch${clean ? ` (${clean})` : ''} (C++17 compiler, make and python3 needed; ` +
      'about a minute; npm shows the compiler output only if it fails: add --foreground-scripts to watch)',
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
  fs.writeFileSync(stamp, `${wanted}\n`);
  process.stdout.write(`croot native build: ${shown} (inputs ${wanted.slice(0, 12)})\n`);
}

main();
