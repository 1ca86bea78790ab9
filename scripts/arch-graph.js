#!/usr/bin/env node
/**
 * The picture of croot's parts in docs/architecture.md, drawn by
 * dependency-cruiser from the code's own imports: one node per room of
 * core/, per engine, native/ and pmda/ (bin/ and core's public index import
 * everything and are left out), an arrow where one imports the other.
 *
 *   node scripts/arch-graph.js          writes the picture into the doc
 *   node scripts/arch-graph.js --check  exits 1 when the doc's picture is not the code's
 *
 * core/architecture.test.ts runs the check.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const DOC = join(ROOT, 'docs', 'architecture.md');
const START = '<!-- arch-graph:start (npm run arch:graph writes this picture; a test keeps it true) -->';
const END = '<!-- arch-graph:end -->';

/** The mermaid flowchart of the parts, as dependency-cruiser draws it. */
function graph() {
  const cli = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  const out = execFileSync(
    process.execPath,
    [
      cli,
      '--config',
      join(ROOT, '.dependency-cruiser.cjs'),
      '--include-only',
      '^(core|engines|native|pmda)/',
      '--exclude',
      '(\\.test\\.ts$|^core/(index|inversify)\\.ts$)',
      '--collapse',
      '^(core/[^/]+|engines/[^/]+|native|pmda)',
      '--output-type',
      'mermaid',
      'core',
      'engines',
      'native',
      'pmda',
    ],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  return out.trim();
}

/** The doc with `picture` between the markers. */
function withPicture(doc, picture) {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC} has no ${START} ... ${END} markers`);
  return `${doc.slice(0, start + START.length)}\n\n\`\`\`mermaid\n${picture}\n\`\`\`\n\n${doc.slice(end)}`;
}

/** Whether the doc's picture is the one the code gives now. */
function pictureIsCurrent() {
  const doc = readFileSync(DOC, 'utf8');
  return withPicture(doc, graph()) === doc;
}

if (require.main === module) {
  if (process.argv.includes('--check')) {
    if (!pictureIsCurrent()) {
      process.stderr.write('docs/architecture.md: the picture of the parts is not what the code gives; run npm run arch:graph\n');
      process.exit(1);
    }
  } else {
    const doc = readFileSync(DOC, 'utf8');
    writeFileSync(DOC, withPicture(doc, graph()));
  }
}

module.exports = { graph, withPicture, pictureIsCurrent, DOC };
