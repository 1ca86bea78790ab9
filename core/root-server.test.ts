import { RequestDeadline } from './root-server.js';

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('RequestDeadline', () => {
  it('aborts the signal with a TimeoutError once a request runs past its time limit', async () => {
    const deadline = new RequestDeadline(20);
    const signal = deadline.start();
    await wait(60);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DOMException).name).toBe('TimeoutError');
    deadline.finish();
  });

  it('does not abort a request that finished in time', async () => {
    const deadline = new RequestDeadline(20);
    const signal = deadline.start();
    deadline.finish();
    await wait(60);
    expect(signal.aborted).toBe(false);
  });

  it('keeps one signal for request after request while none times out', () => {
    const deadline = new RequestDeadline(1000);
    const first = deadline.start();
    deadline.finish();
    const second = deadline.start();
    deadline.finish();
    expect(second).toBe(first);
  });

  it('times each request from its own start', async () => {
    const deadline = new RequestDeadline(50);
    deadline.start();
    await wait(30);
    deadline.finish();
    const signal = deadline.start();
    await wait(30);
    expect(signal.aborted).toBe(false);
    deadline.finish();
  });

  it('gives the next request a fresh signal after one timed out', async () => {
    const deadline = new RequestDeadline(10);
    const timedOut = deadline.start();
    await wait(40);
    deadline.finish();
    const next = deadline.start();
    deadline.finish();
    expect(timedOut.aborted).toBe(true);
    expect(next).not.toBe(timedOut);
    expect(next.aborted).toBe(false);
  });
});
