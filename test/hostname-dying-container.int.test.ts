/**
 * HOSTNAME of a container whose init dies between crootd's lookup and its
 * setns: the built crootd, sandboxes (UTS and PID namespaces of their own,
 * test/support/sandbox.ts) declared to it, and 8 clients (4 through PCP's C
 * library, 4 through croot's RootClient) asking for one sandbox's hostname
 * without pause while its init is SIGKILLed, round after round.
 *
 * What must hold: every answer is that sandbox's own hostname (with its own
 * init's pid, for croot's client), or a failure with a PCP status; never
 * another process's hostname, never the host's, never an answer to a
 * request sent after the test saw the init gone. Each round is answered
 * before the kill and refused after it, so requests did meet the death.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname as hostHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Errno } from '../core/errors/croot-error.js';
import { AnswerChecker, AnswerHammer, ContainerTruth, wrongAnswers } from './support/answer-hammer.js';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { buildPcpCClient } from './support/pcp-peer.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';
import { hostnameTruth } from './support/truth.js';

jest.setTimeout(180000);

const ROUNDS = 12;

function probe(): string | undefined {
  return probes.root() ?? probes.pcpClientLib() ?? probes.native() ?? builtBinaries();
}

describeWith('root, PCP’s C client library and the built crootd', probe, 'HOSTNAME of a container whose init dies while it is asked', () => {
  const tag = randomBytes(4).toString('hex');
  const truth = new ContainerTruth();
  const sandboxes: Sandbox[] = [];
  const victims: string[] = [];
  const control = `alive-${tag}`;
  let dir: string;
  let crootd: CrootdProcess | undefined;
  let hammer: AnswerHammer | undefined;
  let checker: AnswerChecker | undefined;
  let victim = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-dying-'));
    const declared: Array<{ name: string; pid: number }> = [];
    for (const name of [control, ...Array.from({ length: ROUNDS }, (_, i) => `dying${i}-${tag}`)]) {
      const sandbox = await startSandbox(name);
      sandboxes.push(sandbox);
      // The kernel's word for what the sandbox's UTS namespace holds, not the name the test asked for.
      truth.add(name, hostnameTruth(sandbox.pid));
      truth.saw(name, sandbox.pid);
      declared.push({ name, pid: sandbox.pid });
      if (name !== control) victims.push(name);
    }
    const configPath = join(dir, 'croot.json');
    writeFileSync(configPath, JSON.stringify({ disabledEngines: ['docker', 'podman', 'containerd', 'lxc'], containers: declared }));
    crootd = await startCrootd({ socketPath: join(dir, 'root.socket'), logPath: join(dir, 'crootd.log'), args: ['--config', configPath, '--no-pcp-user'] });
    const cClient = buildPcpCClient(dir);
    checker = new AnswerChecker(crootd.socketPath, cClient, truth);
    hammer = new AnswerHammer({
      socketPath: crootd.socketPath,
      cClient,
      crootClients: 4,
      cClients: 4,
      questions: ['hostname'],
      batch: 50,
      pickRef: () => (victim === '' || Math.random() < 0.1 ? control : victim),
    });
  });

  afterAll(async () => {
    await hammer?.stop();
    checker?.close();
    await crootd?.stop();
    for (const s of sandboxes) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`answers each dying container's own hostname or a PCP status, round after round (${ROUNDS} rounds)`, async () => {
    const h = hammer as AnswerHammer;
    h.start();
    for (const name of victims) {
      await checker?.expectTold([[name, 'answered'], [control, 'answered']], async (ref) => truth.running(ref));
      victim = name;
      // Requests for it are in flight from every client before its init goes.
      const before = h.total;
      while (h.total < before + 200) await new Promise((r) => setTimeout(r, 5));
      const init = truth.running(name);
      if (init === undefined) throw new Error(`${name} is not running`);
      process.kill(init.pid, 'SIGKILL');
      await truth.waitGone(init);
      await checker?.expectTold([[name, 'not answered'], [control, 'answered']], async (ref) => truth.running(ref));
    }
    victim = '';
    await h.stop();
    truth.noteGone();
    expect(h.broken).toEqual([]);
    expect(wrongAnswers(truth, h.answers)).toEqual([]);
    // Never the host's own hostname (every sandbox's differs from it).
    expect(h.answers.filter((a) => a.value === hostHostname())).toEqual([]);
    // Every round was answered before its init died and refused after it: as not running.
    for (const name of victims) {
      expect({ name, answered: h.answers.some((a) => a.ref === name) }).toEqual({ name, answered: true });
    }
    expect(h.failures.get(-Errno.ESRCH) ?? 0).toBeGreaterThan(0);
    expect([...h.failures.keys()].filter((s) => s !== -Errno.ESRCH)).toEqual([]);
  });
});
