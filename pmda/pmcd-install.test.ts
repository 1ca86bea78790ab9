/**
 * The pmcd.conf and PMNS edits of installPmda/removePmda, on the layout of
 * the pmcd.conf Debian's PCP 6.0.3 ships.
 */
import { addedSubtrees, agentDomains, agentLine, backupOf, negotiationTimeout, withAgentLine, withNegotiationTimeout, withoutAgentLine, withoutNegotiationTimeout } from './pmcd-install.js';

const SHIPPED = [
  '# Performance Metrics Domain Specifications',
  '# Name  Id      IPC     IPC Params      File/Cmd',
  'root\t1\tpipe\tbinary\t\t/var/lib/pcp/pmdas/root/pmdaroot',
  'pmcd\t2\tdso\tpmcd_init\t/var/lib/pcp/pmdas/pmcd/pmda_pmcd.so',
  'linux\t60\tpipe\tbinary\t\t/var/lib/pcp/pmdas/linux/pmdalinux',
  '',
  '[access]',
  'disallow ".*" : store;',
  'allow "local:*" : all;',
  '',
].join('\n');

const confs: [string, string][] = [['the shipped layout', SHIPPED]];

describe('pmcd.conf edits', () => {
  describe.each(confs)('on %s', (_what, conf) => {
    const crootd = agentLine('root', 1, '/opt/croot/bin/crootd --pmda');

    it('replaces the root line in place and changes nothing else', () => {
      const out = withAgentLine(conf, 'root', crootd, true);
      const before = conf.split('\n');
      const after = out.split('\n');
      expect(after).toHaveLength(before.length);
      const changed = after.map((l, i) => (l === before[i] ? undefined : i)).filter((i) => i !== undefined);
      expect(changed).toEqual([before.findIndex((l) => /^root\s/.test(l))]);
      expect(after).toContain('root\t1\tpipe\tbinary\t\t/opt/croot/bin/crootd --pmda');
    });

    it('puts a root line back first when there is none (pmcd starts the others through it)', () => {
      const without = withoutAgentLine(conf, 'root');
      expect(without.split('\n').some((l) => /^root\s/.test(l))).toBe(false);
      const out = withAgentLine(without, 'root', crootd, true);
      const agents = out.split('\n').filter((l) => /^[a-z]/.test(l) && !l.startsWith('disallow') && !l.startsWith('allow'));
      expect(agents[0]).toBe(crootd);
    });

    it('adds a new agent after the last agent line, before [access], and takes it out again exactly', () => {
      const line = agentLine('crootexample', 510, '/usr/bin/node /x.js');
      const out = withAgentLine(conf, 'crootexample', line);
      const lines = out.split('\n');
      expect(lines.indexOf(line)).toBeLessThan(lines.findIndex((l) => l.startsWith('[access]')) < 0 ? Infinity : lines.findIndex((l) => l.startsWith('[access]')));
      expect(agentDomains(out).get('crootexample')).toBe(510);
      expect(withoutAgentLine(out, 'crootexample')).toBe(conf);
    });

    it('lists the agents and their domains, not the access rules', () => {
      const domains = agentDomains(conf);
      expect(domains.get('pmcd')).toBe(2);
      expect([...domains.keys()].some((k) => k.includes('allow'))).toBe(false);
    });
  });
});

describe('addedSubtrees', () => {
  const ours = ['containers.engine', 'containers.state.running', 'containers.state.status', 'containers.kubernetes.pod', 'containers.kubernetes.container', 'containers.processes'];

  it('deletes the whole tree when none of it was there before', () => {
    expect(addedSubtrees(ours, new Set())).toEqual(['containers']);
  });

  it('deletes only the leaves and branches pmdaroot’s PMNS did not have', () => {
    expect(addedSubtrees(ours, new Set(['containers.engine', 'containers.state.running']))).toEqual([
      'containers.state.status',
      'containers.kubernetes',
      'containers.processes',
    ]);
  });
});

it('names backups after the install folder', () => {
  expect(backupOf('/etc/pcp/pmcd/pmcd.conf', 'croot')).toBe('/etc/pcp/pmcd/pmcd.conf.croot-pmda-backup');
});

describe('pmcd.options -q', () => {
  const shipped = '# longer timeout delay for slow agents\n# -t 10\n\n# disable service advertising (comment out to enable)\n-A\n';

  it('adds -q to the options pmcd starts with, and takes exactly that out again', () => {
    const out = withNegotiationTimeout(shipped, 20);
    expect(negotiationTimeout(shipped)).toBeUndefined();
    expect(negotiationTimeout(out)).toBe(20);
    expect(out.startsWith(shipped)).toBe(true);
    expect(withoutNegotiationTimeout(out, 20)).toBe(shipped);
  });

  it('leaves a longer -q an administrator set alone, and raises a shorter one', () => {
    expect(withNegotiationTimeout(`${shipped}-q 60\n`, 20)).toBe(`${shipped}-q 60\n`);
    expect(negotiationTimeout(withNegotiationTimeout(`${shipped}-q 5\n`, 20))).toBe(20);
  });
});
