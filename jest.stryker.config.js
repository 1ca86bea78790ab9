/**
 * The Jest unit project of jest.config.js, flat, for Stryker's jest runner
 * (`npm run mutate`), narrowed to the unit tests of the top folder being
 * mutated (CROOT_MUTATE_PART: core/registry or core/. -> core/**\/*.test.ts):
 * a folder's mutants are judged by that folder's own tests. Engine tests
 * that load core through fixture trees would otherwise cover most of core's
 * mutants with seconds of waiting each; integration tests never run here.
 */
const path = require('node:path');
const config = require('./jest.config.js');

// Tests wait for what they expect with eventually() (test/support/outcomes.ts),
// 10 s by default. Under Stryker a mutant that breaks an engine would make each
// such wait run out: 2 s fails the test well within Stryker's timeout (5 s
// over the tests' own time), so the mutant counts as killed and costs no
// restarted test process. Set before Jest builds the tests' environment.
process.env.CROOT_TEST_EVENTUALLY_MS ??= '2000';

const unit = config.projects.find((project) => project.displayName === 'unit');
if (unit === undefined) throw new Error('jest.config.js has no project named "unit"');

const top = (process.env.CROOT_MUTATE_PART ?? 'core').split('/')[0];
const { displayName: _displayName, ...project } = unit;
/** @type {import('jest').Config} */
module.exports = {
  ...project,
  testMatch: [`<rootDir>/${top}/**/*.test.ts`],
  // After a file's first failing test its other tests are skipped: one failure
  // kills the mutant (see the environment's comment).
  testEnvironment: path.join(__dirname, 'test', 'support', 'fail-fast-environment.js'),
  testTimeout: config.testTimeout,
};
