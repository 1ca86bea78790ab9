#!/usr/bin/env node
/**
 * npm run mutate -- [folder ...] [--checker] [--concurrency N] [--summary]
 *
 * Runs Stryker (stryker.config.js) over core/ and engines/, or the folders
 * named (core, engines/docker, ...), one part at a time: a top folder is
 * split into its subfolders and its own files (core/.), each part a Stryker
 * run with its own incremental file under reports/mutation/. Then prints the
 * mutation score of every part and folder from those files (--summary: only
 * that). --checker adds Stryker's TypeScript checker (see docs/testing.md).
 * Exits non-zero when a Stryker run fails.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const reports = path.join(root, 'reports', 'mutation');

/** The parts a folder is run in: each subfolder, and the folder's own files. */
function partsOf(folder) {
  if (folder.split('/').length > 1) return [folder];
  const entries = fs.readdirSync(path.join(root, folder), { withFileTypes: true });
  const parts = entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('__'))
    .map((entry) => `${folder}/${entry.name}`)
    .sort();
  if (entries.some((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))) {
    parts.push(`${folder}/.`);
  }
  return parts;
}

/** Counts of mutant states in one report, by file path. */
function countsOf(report) {
  const counts = {};
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const c = (counts[file] = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, other: 0 });
    for (const mutant of mutants) {
      if (mutant.status in c) c[mutant.status]++;
      else c.other++;
    }
  }
  return counts;
}

function add(into, c) {
  for (const key of Object.keys(c)) into[key] = (into[key] ?? 0) + c[key];
}

/** Stryker's mutation score: detected over valid mutants; and over covered ones. */
function line(name, c) {
  const detected = c.Killed + c.Timeout;
  const valid = detected + c.Survived + c.NoCoverage;
  const covered = detected + c.Survived;
  const pct = (n, d) => (d === 0 ? '   -  ' : `${((100 * n) / d).toFixed(1).padStart(5)}%`);
  return `${name.padEnd(22)} ${pct(detected, valid)} ${pct(detected, covered)} ${String(c.Killed).padStart(6)} ${String(c.Timeout).padStart(7)} ${String(c.Survived).padStart(8)} ${String(c.NoCoverage).padStart(10)}`;
}

function summary() {
  if (!fs.existsSync(reports)) return;
  const byFolder = {};
  const rows = [];
  for (const name of fs.readdirSync(reports).filter((n) => n.endsWith('.incremental.json')).sort()) {
    const report = JSON.parse(fs.readFileSync(path.join(reports, name), 'utf8'));
    const total = {};
    for (const [file, c] of Object.entries(countsOf(report))) {
      add(total, c);
      add((byFolder[file.split('/')[0]] ??= {}), c);
    }
    rows.push(line(name.replace('.incremental.json', ''), total));
  }
  console.log(`${'part'.padEnd(22)}  score covered ${'killed'.padStart(6)} ${'timeout'.padStart(7)} ${'survived'.padStart(8)} ${'nocoverage'.padStart(10)}`);
  for (const row of rows) console.log(row);
  for (const [folder, c] of Object.entries(byFolder)) console.log(line(`${folder}/ (all parts)`, c));
}

const args = process.argv.slice(2);
const folders = [];
const env = { ...process.env };
let summaryOnly = false;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--checker') env.CROOT_MUTATE_CHECKER = '1';
  else if (arg === '--summary') summaryOnly = true;
  else if (arg === '--concurrency') env.CROOT_MUTATE_CONCURRENCY = String(Number(args[++i]));
  else if (arg.startsWith('-')) {
    console.error(`mutate: unknown option ${arg}`);
    process.exit(2);
  } else folders.push(arg.replace(/\/+$/, ''));
}
if (folders.length === 0) folders.push('core', 'engines');

if (!summaryOnly) {
  const stryker = path.join(root, 'node_modules', '.bin', 'stryker');
  for (const part of folders.flatMap(partsOf)) {
    console.log(`mutate: ${part}`);
    const started = Date.now();
    const run = spawnSync(stryker, ['run', 'stryker.config.js'], {
      cwd: root,
      stdio: 'inherit',
      env: { ...env, CROOT_MUTATE_PART: part },
    });
    console.log(`mutate: ${part} took ${((Date.now() - started) / 60000).toFixed(1)} min`);
    if (run.status !== 0) process.exit(run.status ?? 1);
  }
}
summary();
