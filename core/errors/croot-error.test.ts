import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { inspect } from 'node:util';
import { CrootError, ErrorCodes, isAnswerCode, isCrootError, statusOf } from './croot-error.js';
import { systemError } from './system-error.js';

function nodeError(run: () => unknown): NodeJS.ErrnoException {
  try {
    run();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected a failure');
}

function connectError(path: string): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve) => createConnection(path).once('error', resolve));
}

describe('CrootError', () => {
  it('records no stack trace for an answer, and leaves the limit as it was', () => {
    const limit = Error.stackTraceLimit;
    const err = new CrootError('ERR_NOT_RUNNING', 'container docker:web is not running');
    expect(err.stack).toBe('CrootError: container docker:web is not running');
    expect(Error.stackTraceLimit).toBe(limit);
  });

  it('keeps the stack trace of a fault', () => {
    expect(new CrootError('ERR_SYSTEM', 'reading /proc failed').stack).toContain('croot-error.test');
  });

  it('tells the answers from the faults by their code', () => {
    const answers = (Object.keys(ErrorCodes) as (keyof typeof ErrorCodes)[]).filter(isAnswerCode).sort();
    expect(answers).toEqual(['ERR_AMBIGUOUS_NAME', 'ERR_ENGINE_LOADING', 'ERR_INVALID_NAME', 'ERR_NOT_CHILD', 'ERR_NOT_RUNNING', 'ERR_NO_CONTAINER', 'ERR_PID_REUSED']);
  });

  it('is recognised by CrootError.is when another copy of croot made it, where instanceof is not', () => {
    let Other: typeof CrootError | undefined;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      Other = (require('./croot-error.js') as typeof import('./croot-error.js')).CrootError;
    });
    const foreign = new (Other as typeof CrootError)('ERR_NO_CONTAINER', 'no container matches "web"');
    expect(foreign instanceof CrootError).toBe(false);
    expect(CrootError.is(foreign)).toBe(true);
    expect(statusOf(foreign)).toBe(-12399);
    expect(CrootError.is(new Error('plain'))).toBe(false);
    expect(CrootError.is({ code: 'ERR_NO_CONTAINER', status: -12399 })).toBe(false);
    expect(CrootError.is(null)).toBe(false);
  });

  it("carries its code's status unless told another, and the errno, system call, details and cause it was given", () => {
    const cause = new Error('inner');
    const err = new CrootError('ERR_SYSTEM', 'setns failed', { status: -1, errno: 1, syscall: 'setns', details: { pid: 7 }, cause });
    expect({ name: err.name, code: err.code, status: err.status, errno: err.errno, syscall: err.syscall, details: err.details, cause: err.cause }).toEqual({
      name: 'CrootError',
      code: 'ERR_SYSTEM',
      status: -1,
      errno: 1,
      syscall: 'setns',
      details: { pid: 7 },
      cause,
    });
    const bare = new CrootError('ERR_NO_CONTAINER', 'no container matches "web"');
    expect({ status: bare.status, errno: bare.errno, syscall: bare.syscall, details: bare.details }).toEqual({ status: -12399, errno: undefined, syscall: undefined, details: {} });
    // Without a cause there is none to show (util.inspect prints a cause that is there, even one that is undefined).
    expect('cause' in bare).toBe(false);
    expect(inspect(bare)).not.toContain('[cause]');
    expect(inspect(err)).toContain('[cause]: Error: inner');
  });

  it('is not fooled by values that only look like one', () => {
    for (const value of [undefined, 'CrootError', 7, { [Symbol.for('croot/CrootError')]: 'yes' }, Object.create(null) as object]) {
      expect([value, CrootError.is(value), isCrootError(value)]).toEqual([value, false, false]);
    }
    expect(isCrootError(new CrootError('ERR_TIMEOUT', 'slow'))).toBe(true);
    expect(isCrootError({ [Symbol.for('croot/CrootError')]: true })).toBe(true);
  });
});

describe('systemError', () => {
  it("keeps a Node error's errno and system call as fields and answers -errno", () => {
    const cause = nodeError(() => readFileSync('/proc/self/no-such-file'));
    const err = systemError(cause, 'reading a proc file');
    expect({ code: err.code, status: err.status, errno: err.errno, syscall: err.syscall, name: err.details.code }).toEqual({
      code: 'ERR_SYSTEM',
      status: -2,
      errno: 2,
      syscall: 'open',
      name: 'ENOENT',
    });
    expect(err.cause).toBe(cause);
    expect(err.message).toMatch(/^reading a proc file: ENOENT/);
  });

  it('reads ENOENT about a process as "not running", and about a connect as "nobody listens"', async () => {
    const cause = nodeError(() => readFileSync('/proc/999999999/stat'));
    expect(systemError(cause, 'pid 999999999', { process: true })).toMatchObject({ code: 'ERR_NOT_RUNNING', status: -3, errno: 2 });
    const refused = await connectError('/nonexistent/croot.socket');
    expect(systemError(refused, 'connect', { connect: true })).toMatchObject({ code: 'ERR_NOT_CONNECTED', status: -2, errno: 2, syscall: 'connect' });
  });

  it('reads every errno of a child process call as ERR_SYSTEM with -errno', () => {
    const cause = nodeError(() => readFileSync('/proc/999999999/stat'));
    expect(systemError(cause, 'spawn', { child: true })).toMatchObject({ code: 'ERR_SYSTEM', status: -2 });
  });

  it('returns a CrootError as it is, and makes a generic ERR_SYSTEM of what carries no errno', () => {
    const own = new CrootError('ERR_TIMEOUT', 'too slow');
    expect(systemError(own, 'anything')).toBe(own);
    expect(systemError(new Error('odd'), 'doing it')).toMatchObject({ code: 'ERR_SYSTEM', status: -12345, errno: undefined, message: 'doing it: odd' });
  });
});
