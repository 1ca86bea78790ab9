'use strict';
/**
 * Prints one plain closing line after Jest's own summary, e.g.
 *   tests: 672 passed, 0 failed, 0 skipped
 * so CI (and anyone grepping a log) reads the outcome in one line.
 *
 * In CI (`CI` set to anything but empty, `false` or `0`, the rule of
 * test/support/components.ts) a skipped or todo test fails the run: the
 * reporter names each one and returns an error from getLastError(), which
 * Jest turns into a failed run (exit status 1). A run narrowed with `-t`
 * skips the tests it leaves out by design and is exempt; .ci/run never
 * narrows.
 */
function isCI(env = process.env) {
  const value = String(env.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== 'false' && value !== '0';
}

/** The full names of the skipped and todo tests in Jest's aggregated results. */
function skippedTests(results) {
  const out = [];
  for (const file of results.testResults ?? []) {
    for (const test of file.testResults ?? []) {
      if (test.status === 'pending' || test.status === 'skipped' || test.status === 'todo') {
        out.push(`${file.testFilePath}: ${test.fullName} (${test.status})`);
      }
    }
  }
  return out;
}

class SummaryReporter {
  constructor(globalConfig = {}) {
    this.enforce = isCI() && !globalConfig.testNamePattern;
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    if (this.enforce && skipped > 0) {
      const names = skippedTests(results);
      process.stdout.write(`ci: ${skipped} skipped or todo tests fail the run in CI:\n${names.map((n) => `  ${n}\n`).join('')}`);
      this.error = new Error(`${skipped} tests were skipped in CI`);
    }
    process.stdout.write(`tests: ${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped\n`);
  }

  getLastError() {
    return this.error;
  }
}
module.exports = SummaryReporter;
module.exports.isCI = isCI;
module.exports.skippedTests = skippedTests;
