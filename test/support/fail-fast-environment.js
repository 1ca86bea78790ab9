/**
 * Jest's node environment, except that once a test or hook has failed while
 * Stryker runs a mutant, the remaining tests of that mutant's run are
 * skipped, in this file and in the files after it. For mutation testing only
 * (jest.stryker.config.js): Stryker needs one failing test to call a mutant
 * killed and cannot make Jest bail (Jest runs every related file anyway);
 * without this, every mutant that breaks an engine ran all of that engine's
 * tests, each failing after its own wait. A mutant no test notices still runs
 * every test that covers it, so the score is the same. Outside a mutant's run
 * (Stryker's first, full run) only the failing file's remaining tests are
 * skipped.
 */
'use strict';
const { TestEnvironment } = require('jest-environment-node');

/** Stryker's variable naming the mutant being run (@stryker-mutator/api's INSTRUMENTER_CONSTANTS). */
const ACTIVE_MUTANT = '__STRYKER_ACTIVE_MUTANT__';
/**
 * The mutant whose run saw a failure. Module state outlives one file's
 * environment: Stryker's Jest runner runs a mutant's files in band, in one
 * process that loads this module once.
 */
let failedMutant;

class FailFastEnvironment extends TestEnvironment {
  failed = false;

  async handleTestEvent(event, state) {
    const mutant = process.env[ACTIVE_MUTANT];
    // A file after the failure: every block skipped, so no beforeAll of it runs either.
    if (event.name === 'run_start' && mutant !== undefined && mutant === failedMutant) skipAll(state.rootDescribeBlock);
    else if (event.name === 'test_fn_failure' || event.name === 'hook_failure') {
      this.failed = true;
      if (mutant !== undefined) failedMutant = mutant;
    }
    // jest-circus looks at the mode after test_start: a skipped test runs no hooks either.
    else if (event.name === 'test_start' && (this.failed || (mutant !== undefined && mutant === failedMutant))) event.test.mode = 'skip';
  }
}

/** Marks a describe block's tests and blocks skipped (jest-circus skips a block's hooks when it has no test to run). */
function skipAll(block) {
  for (const child of block.children) {
    child.mode = 'skip';
    if (child.type === 'describeBlock') skipAll(child);
  }
}

module.exports = FailFastEnvironment;
