'use strict';
/**
 * Prints one plain closing line after Jest's own summary, e.g.
 *   tests: 672 passed, 0 failed, 0 skipped
 * so CI (and anyone grepping a log) reads the outcome in one line.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`tests: ${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
module.exports = SummaryReporter;
