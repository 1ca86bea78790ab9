/**
 * The built crootd's process service (STARTPMDA/STOPPMDA) as pmcd meets it,
 * in situations the in-process tests cannot make: a child PID reused after
 * an earlier child's uncollected exit (crootd runs in a PID namespace of its
 * own, where the test chooses the next PID through ns_last_pid); agents'
 * signal dispositions when crootd itself ignores signals; STARTPMDA from an
 * unprivileged client (uid 65534 through PCP's own C client library)
 * allowed only for the agents of a real pmcd.conf copy.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { joinCommandLine } from '../core/process/pmcd-command-line.js';
import { RootClient } from '../core/client/root-client.js';
import { describeWith, commandWorks, probes } from './support/components.js';
import { builtBinaries, retryUntil, runCommand, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { buildPcpCClient, type CClientResult } from './support/pcp-peer.js';
import { childrenOf, processState } from './support/processes.js';

/** Every built-in engine but the static one: crootd then starts no helper process of its own. */
const NO_ENGINES = { disabledEngines: ['docker', 'podman', 'containerd', 'lxc'] };

const prerequisites = (): string | undefined =>
  probes.root() ?? probes.native() ?? builtBinaries() ?? commandWorks('unshare', ['--version']) ?? commandWorks('nsenter', ['--version']);

describeWith('root, the native module, the built binaries, unshare and nsenter', prerequisites, "crootd's process service", () => {
  describe('a child PID reused after an earlier child exited and nobody collected its status', () => {
    let dir: string;
    let crootd: CrootdProcess | undefined;
    let client: RootClient;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'croot-t-pidreuse-'));
      writeFileSync(join(dir, 'croot.json'), JSON.stringify(NO_ENGINES));
      crootd = await startCrootd({
        socketPath: join(dir, 'root.socket'),
        logPath: join(dir, 'crootd.log'),
        args: ['--config', join(dir, 'croot.json'), '--no-pcp-user'],
        // crootd is pid 1 of a PID namespace of its own; --kill-child ends it should unshare be killed.
        wrapper: ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc'],
      });
      client = await RootClient.connect(crootd.socketPath, { transport: nodeSocketTransport });
    });

    afterAll(async () => {
      client?.close();
      if (crootd !== undefined) {
        try {
          process.kill(crootd.serverPid(), 'SIGTERM');
        } catch {
          // already gone
        }
        await crootd.stop('SIGTERM', 5000);
      }
      rmSync(dir, { recursive: true, force: true });
    });

    afterEach(async () => {
      // What a failed test left: its children killed from outside, reaped by crootd, their statuses collected.
      for (const pid of childrenOfCrootd()) process.kill(pid, 'SIGKILL');
      await retryUntil(async () => childrenOfCrootd(), (c) => c.length === 0, 5000, 20);
      while ((await client.processWait(-1)).pid > 0);
    });

    /** Makes `pid` the next PID the kernel hands out in crootd's namespace (as seen there). */
    function nextPidInCrootdNamespace(pid: number): void {
      // nsenter forks a shell inside the namespace; the sysctl acts on the writer's own PID namespace.
      execFileSync('nsenter', ['-t', String(crootd?.serverPid()), '-p', 'sh', '-c', `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid`], { timeout: 10000 });
    }

    /** Host pids of crootd's children, zombies included. */
    const childrenOfCrootd = (): number[] => childrenOf(crootd?.serverPid() ?? -1);

    /**
     * Starts `sh -c "exit 3"`, lets crootd reap it (nobody asks for its
     * status), then starts `sleep 60` with the very same pid. Returns that
     * pid and the sleep's host pid.
     */
    async function reusedPid(): Promise<{ pid: number; hostPid: number }> {
      const first = await client.processStart(1, 'first', '/bin/sh -c "exit 3"');
      expect(await retryUntil(async () => childrenOfCrootd(), (c) => c.length === 0, 5000, 20)).toEqual([]);
      nextPidInCrootdNamespace(first.pid);
      const second = await client.processStart(1, 'second', '/bin/sleep 60');
      // Not a check of crootd: that the namespace gave the pid out again is the premise of the test.
      expect(second.pid).toBe(first.pid);
      const [hostPid] = childrenOfCrootd();
      expect(hostPid).toBeDefined();
      expect(readFileSync(`/proc/${hostPid}/comm`, 'utf8').trim()).toBe('sleep');
      return { pid: second.pid, hostPid: hostPid as number };
    }

    it("never answers a wait for the live child with the dead one's status", async () => {
      const { pid, hostPid } = await reusedPid();
      expect(await client.processWait(pid)).toEqual({ pid: 0, code: 0 });
      expect(await client.processWait(-1)).toEqual({ pid: 0, code: 0 });
      expect(processState(hostPid)).toBe('S');
      await client.processTerminate(pid);
      const killed = await client.processWait(-1);
      expect(killed.pid).toBe(pid);
      expect(killed.code & 0x7f).toBe(9);
      expect(await client.processWait(-1)).toEqual({ pid: -1, code: 0 });
    });

    it('kills the live child on terminate, and its wait then gives SIGKILL', async () => {
      const { pid, hostPid } = await reusedPid();
      expect(await client.processTerminate(pid)).toEqual({ pid, code: 0 });
      // Killed and reaped: gone from the host's /proc.
      expect(processState(hostPid)).toBeUndefined();
      const killed = await client.processWait(pid);
      expect(killed.pid).toBe(pid);
      expect(killed.code & 0x7f).toBe(9);
      expect(await client.processWait(-1)).toEqual({ pid: -1, code: 0 });
    });
  });

  describe('signals', () => {
    let dir: string;
    let crootd: CrootdProcess | undefined;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'croot-t-signals-'));
      writeFileSync(join(dir, 'croot.json'), JSON.stringify(NO_ENGINES));
      crootd = await startCrootd({
        socketPath: join(dir, 'root.socket'),
        logPath: join(dir, 'crootd.log'),
        args: ['--config', join(dir, 'croot.json'), '--no-pcp-user'],
        // Started with signals 40 and 41 ignored, which Node keeps (it resets only those below 32).
        wrapper: ['sh', '-c', 'trap "" 40 41; exec "$0" "$@"'],
      });
    });

    afterAll(async () => {
      await crootd?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('starts agents with no signal ignored or blocked, although crootd ignores several', async () => {
      const ignored = (status: string, field: 'SigIgn' | 'SigBlk'): bigint => BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'x'}`);
      const bit = (sig: number): bigint => 1n << BigInt(sig - 1);
      const own = ignored(readFileSync(`/proc/${crootd?.serverPid()}/status`, 'utf8'), 'SigIgn');
      // SIGPIPE and SIGXFSZ (Node's), 40 and 41 (inherited).
      expect(own & (bit(13) | bit(25) | bit(40) | bit(41))).toBe(bit(13) | bit(25) | bit(40) | bit(41));

      const client = await RootClient.connect(crootd?.socketPath, { transport: nodeSocketTransport });
      try {
        // Socket IPC: the agent's stdout is crootd's log.
        const { pid } = await client.processStart(1, 'status', '/bin/sh -c "echo begin-$$; cat /proc/self/status; echo end-$$"');
        const between = new RegExp(`begin-${pid}\\n([\\s\\S]*)end-${pid}\\n`);
        const log = await retryUntil(async () => crootd?.log() ?? '', (text) => between.test(text), 5000);
        const status = between.exec(log)?.[1] ?? '';
        expect({ SigIgn: ignored(status, 'SigIgn'), SigBlk: ignored(status, 'SigBlk') }).toEqual({ SigIgn: 0n, SigBlk: 0n });
      } finally {
        client.close();
      }
    });
  });

  describeWith('PCP client library', probes.pcpClientLib, 'STARTPMDA from a client other than root', () => {
    const NOBODY = 65534;
    let dir: string;
    let pmcdConf: string;
    let client: string;
    let crootd: CrootdProcess | undefined;
    /** The machine's pmcd.conf with the test's agents added before its [access] section. */
    let machineConf: string;

    const quotedArgv = ['/bin/sh', '-c', 'echo "a  b" # not a comment'];
    const agents = ['croot-id 250 pipe binary /usr/bin/id -u', 'croot-quoted 251 pipe binary /bin/sh -c "echo \\"a  b\\" # not a comment"'];

    function writeConf(extra: readonly string[]): void {
      const at = machineConf.search(/^\s*\[access\]/m);
      const [head, tail] = at < 0 ? [machineConf, ''] : [machineConf.slice(0, at), machineConf.slice(at)];
      writeFileSync(pmcdConf, `${head}\n${extra.join('\n')}\n${tail}`);
    }

    /** Runs PCP's C client as `uid` with `ops` on crootd's socket. */
    async function asUser(uid: number, ...ops: string[]): Promise<CClientResult[]> {
      const r = await runCommand('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', client, crootd?.socketPath ?? '', ...ops]);
      return r.stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as CClientResult);
    }

    const start = (label: string, argv: readonly string[], ipctype = 2): string => `start:${ipctype}:${label}:${joinCommandLine(argv)}`;
    const refusals = (): string[] => (crootd?.log() ?? '').split('\n').filter((l) => l.includes(' WARN refused to start an agent pmcd.conf does not name '));

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'croot-t-policy-'));
      // Others may traverse it to the socket (0777) and the client binary.
      chmodSync(dir, 0o711);
      client = buildPcpCClient(dir);
      machineConf = readFileSync('/etc/pcp/pmcd/pmcd.conf', 'utf8');
      pmcdConf = join(dir, 'pmcd.conf');
      writeConf(agents);
      writeFileSync(join(dir, 'croot.json'), JSON.stringify(NO_ENGINES));
      crootd = await startCrootd({
        socketPath: join(dir, 'root.socket'),
        logPath: join(dir, 'crootd.log'),
        args: ['--config', join(dir, 'croot.json'), '--no-pcp-user', '--allow-uid', String(NOBODY), '--socket-mode', '0777'],
        env: { ...process.env, PCP_PMCDCONF_PATH: pmcdConf },
      });
    });

    afterAll(async () => {
      await crootd?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('starts, as root, the agents pmcd.conf names, from the exact command line pmcd sends', async () => {
      const results = await asUser(NOBODY, start('croot-id', ['/usr/bin/id', '-u']), start('croot-quoted', quotedArgv));
      expect(results.map((r) => [r.op, r.sts, r.output])).toEqual([
        ['connect', expect.any(Number), undefined],
        ['start', 0, '0\n'],
        ['start', 0, 'a  b\n'],
      ]);
      expect(results[0]?.sts).toBeGreaterThanOrEqual(0);
    });

    it('refuses anything else with -EPERM and logs each (uid, command) once; root may start it', async () => {
      const before = refusals().length;
      const results = await asUser(
        NOBODY,
        start('croot-other', ['/usr/bin/id', '-u']),
        start('croot-id', ['/usr/bin/id', '-u', '-n']),
        start('croot-id', ['/usr/bin/id', '-u'], 1),
        start('croot-other', ['/usr/bin/id', '-u']),
      );
      expect(results.slice(1).map((r) => r.sts)).toEqual([-1, -1, -1, -1]);
      const logged = refusals().slice(before);
      expect(logged).toHaveLength(3);
      expect(logged[0]).toMatch(new RegExp(` uid=${NOBODY} .*label=croot-other args="/usr/bin/id -u"`));
      const asRoot = await asUser(0, start('croot-other', ['/usr/bin/id', '-u']));
      expect(asRoot[1]).toMatchObject({ op: 'start', sts: 0, output: '0\n' });
    });

    it('follows pmcd.conf as it changes, without a restart or SIGHUP', async () => {
      const late = start('croot-late', ['/usr/bin/id', '-u']);
      expect((await asUser(NOBODY, late))[1]?.sts).toBe(-1);
      writeConf([...agents, 'croot-late 252 pipe binary /usr/bin/id -u']);
      expect((await asUser(NOBODY, late))[1]).toMatchObject({ sts: 0, output: '0\n' });
      renameSync(pmcdConf, `${pmcdConf}.away`);
      try {
        expect((await asUser(NOBODY, late))[1]?.sts).toBe(-1);
        expect(refusals().at(-1)).toMatch(/reason="cannot read .*pmcd\.conf: ENOENT"/);
      } finally {
        renameSync(`${pmcdConf}.away`, pmcdConf);
      }
    });
  });
});
