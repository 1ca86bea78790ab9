/**
 * The PMNS and help files croot writes for its root PMDA, read by PCP's own
 * tools: `pminfo -n` resolves every name to its PMID, `newhelp` builds the
 * help database and `chkhelp` prints each text back as defined, and
 * pmdaroot's names mean the same PMIDs in croot's PMNS as in PCP's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandWorks, describeWith } from '../test/support/components.js';
import { pmidString } from './identifiers.js';
import { pmdaFiles } from './pmda-files.js';
import { rootPmda } from './root-pmda.js';

const PCP_ROOT_PMNS = '/var/lib/pcp/pmdas/root/root_root';
const tools = (): string | undefined =>
  commandWorks('test', ['-x', '/usr/lib/pcp/bin/newhelp']) ?? commandWorks('test', ['-x', '/usr/lib/pcp/bin/chkhelp']) ?? commandWorks('test', ['-f', PCP_ROOT_PMNS]);

describeWith('PCP (pminfo, newhelp, chkhelp)', tools, 'the root PMDA’s PMNS and help files, read by PCP’s tools', () => {
  const pmda = rootPmda({ source: { containers: () => [] } });
  const files = pmdaFiles(pmda);
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-pmda-files-'));
    writeFileSync(join(dir, 'root_croot'), files.pmns);
    writeFileSync(join(dir, 'help'), files.help);
    execFileSync('/usr/lib/pcp/bin/newhelp', ['-n', join(dir, 'root_croot'), '-v', '2', '-o', join(dir, 'help'), join(dir, 'help')]);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives pminfo every metric name with its PMID', () => {
    const out = execFileSync('pminfo', ['-n', join(dir, 'root_croot'), '-m', 'containers'], { encoding: 'utf8' });
    const seen = new Map(out.trim().split('\n').map((l) => l.split(' PMID: ') as [string, string]));
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(pmda.metricList.map((m) => [m.name, pmidString(m.pmid)])));
  });

  it('gives pmdaroot’s names the PMIDs PCP’s own PMNS gives them', () => {
    const theirs = execFileSync('pminfo', ['-n', PCP_ROOT_PMNS, '-m', 'containers'], { encoding: 'utf8' }).trim().split('\n');
    const ours = new Set(execFileSync('pminfo', ['-n', join(dir, 'root_croot'), '-m', 'containers'], { encoding: 'utf8' }).trim().split('\n'));
    expect(theirs.length).toBe(7);
    for (const line of theirs) expect(ours.has(line)).toBe(true);
  });

  it('gives chkhelp each one-line and long text as defined', () => {
    for (const m of pmda.metricList) {
      const out = execFileSync('/usr/lib/pcp/bin/chkhelp', ['-n', join(dir, 'root_croot'), '-H', '-O', join(dir, 'help'), m.name], { encoding: 'utf8' });
      expect(out).toContain(`PMID ${pmidString(m.pmid)} ${m.name}: ${m.help.oneline}\n`);
      expect(out).toContain(m.help.text === undefined ? '<no full text available>' : `${m.help.text}\n`);
    }
    const indom = execFileSync('/usr/lib/pcp/bin/chkhelp', ['-n', join(dir, 'root_croot'), '-H', '-O', '-i', join(dir, 'help')], { encoding: 'utf8' });
    expect(indom).toContain('InDom 1.0: container Instance Domain\nOne instance per running container.');
  });
});
