#!/usr/bin/env node
/**
 * npm run mutate -- [folder ...] [--checker] [--concurrency N]
 *
 * Runs Stryker (stryker.config.js) once per folder, core/ and engines/ when
 * none is named; a folder may be a part of one (core/registry), which keeps
 * an incremental file of its own. --checker adds the TypeScript checker
 * (mutants that do not compile are dropped before any test runs; slower here,
 * see docs/testing.md). Exits non-zero when a run fails.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const args = process.argv.slice(2);
const folders = [];
const env = { ...process.env };
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--checker') env.CROOT_MUTATE_CHECKER = '1';
  else if (arg === '--concurrency') env.CROOT_MUTATE_CONCURRENCY = String(Number(args[++i]));
  else if (arg.startsWith('-')) {
    console.error(`mutate: unknown option ${arg}`);
    process.exit(2);
  } else folders.push(arg.replace(/\/+$/, ''));
}
if (folders.length === 0) folders.push('core', 'engines');

const root = path.resolve(__dirname, '..');
const stryker = path.join(root, 'node_modules', '.bin', 'stryker');
for (const folder of folders) {
  console.log(`mutate: ${folder}/`);
  const run = spawnSync(stryker, ['run', 'stryker.config.js'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...env, CROOT_MUTATE_FOLDER: folder },
  });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
