/**
 * Jest's test sequencer, fastest file first (by the time Jest recorded for
 * each file, else smallest first), for mutation testing only
 * (jest.stryker.config.js). With fail-fast-environment.js skipping the rest
 * of a mutant's run after its first failure, a mutant that a quick unit test
 * notices is killed before the slow files that cover it start waiting.
 * Jest's own order (last failed, then slowest first) suits a normal run.
 */
'use strict';
const Sequencer = require('@jest/test-sequencer').default;

class FastFirstSequencer extends Sequencer {
  sort(tests) {
    const keyed = tests.map((test) => ({ test, time: this.time(test) ?? Infinity, size: test.context.hasteFS.getSize(test.path) ?? 0 }));
    keyed.sort((a, b) => (a.time === b.time ? a.size - b.size : a.time - b.time));
    return keyed.map(({ test }) => test);
  }
}

module.exports = FastFirstSequencer;
