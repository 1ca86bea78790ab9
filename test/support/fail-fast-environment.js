/**
 * Jest's node environment, except that once a test or hook of a file has
 * failed, the file's remaining tests are skipped. For mutation testing only
 * (jest.stryker.config.js): Stryker needs one failing test to call a mutant
 * killed and asks its test runner to bail at the first failure, which Jest
 * does per file, not per test; without this, every mutant that breaks an
 * engine ran all of that engine's tests, each failing after its own wait.
 * A mutant no test notices still runs every test that covers it.
 */
'use strict';
const { TestEnvironment } = require('jest-environment-node');

class FailFastEnvironment extends TestEnvironment {
  failed = false;

  async handleTestEvent(event) {
    if (event.name === 'test_fn_failure' || event.name === 'hook_failure') this.failed = true;
    // jest-circus looks at the mode after test_start: a skipped test runs no hooks either.
    else if (event.name === 'test_start' && this.failed) event.test.mode = 'skip';
  }
}

module.exports = FailFastEnvironment;
