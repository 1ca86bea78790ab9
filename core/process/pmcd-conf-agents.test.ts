/**
 * pmcd.conf read with pmcd's own scanner rules (src/pmcd/src/config.c in
 * PCP): the expected words are what pmcd's FindNextToken/BuildArgv make of
 * each line, worked out from that source; test/pcp-pmcd-dropin.int.test.ts
 * has PCP's real pmcd send the machine's pmcd.conf through croot.
 */
import { mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PMCD_CONF, PmcdConfAgents, parsePmcdConf, pmcdConfPath } from './pmcd-conf-agents.js';

const PIPE = 2;
const SOCKET = 1;

describe('parsePmcdConf', () => {
  it("reads PCP 6.0.3's generated pmcd.conf: pipe agents with their words, dso agents and [access] left out", () => {
    const text = [
      '# Performance Metrics Domain Specifications',
      '# Name  Id      IPC     IPC Params      File/Cmd',
      'root\t1\tpipe\tbinary\t\t/var/lib/pcp/pmdas/root/pmdaroot',
      'pmcd\t2\tdso\tpmcd_init\t/var/lib/pcp/pmdas/pmcd/pmda_pmcd.so',
      'proc\t3\tpipe\tbinary\t\t/var/lib/pcp/pmdas/proc/pmdaproc -d 3',
      'linux\t60\tpipe\tbinary\t\t/var/lib/pcp/pmdas/linux/pmdalinux',
      '',
      '[access]',
      'disallow ".*" : store;',
      'allow "local:*" : all;',
    ].join('\n');
    expect(parsePmcdConf(text)).toEqual({
      agents: [
        { label: 'root', ipctype: PIPE, argv: ['/var/lib/pcp/pmdas/root/pmdaroot'], line: 3 },
        { label: 'proc', ipctype: PIPE, argv: ['/var/lib/pcp/pmdas/proc/pmdaproc', '-d', '3'], line: 5 },
        { label: 'linux', ipctype: PIPE, argv: ['/var/lib/pcp/pmdas/linux/pmdalinux'], line: 6 },
      ],
      problems: [],
    });
  });

  it('keeps white space inside quotes and turns \\" and \\# into " and #', () => {
    const { agents } = parsePmcdConf('q 9 pipe binary /bin/sh -c "echo \\"a  b\\" # kept" x\\#y \\"z');
    expect(agents[0]?.argv).toEqual(['/bin/sh', '-c', 'echo "a  b" # kept', 'x#y', '"z']);
  });

  it('ends a word and the line at an unescaped # outside quotes', () => {
    expect(parsePmcdConf('a 9 pipe binary /bin/agent -x#comment more').agents[0]?.argv).toEqual(['/bin/agent', '-x']);
    expect(parsePmcdConf('a 9 pipe binary /bin/agent # comment').agents[0]?.argv).toEqual(['/bin/agent']);
  });

  it('keeps a " inside an unquoted word as it is, and starts a new word right after a closing quote', () => {
    expect(parsePmcdConf('a 9 pipe binary /bin/agent a"b "c d"e').agents[0]?.argv).toEqual(['/bin/agent', 'a"b', 'c d', 'e']);
  });

  it('joins a line ending in a backslash with the next', () => {
    const { agents } = parsePmcdConf('long 9 pipe binary /bin/agent \\\n  -d 9 \\\n  -l log\nnext 10 pipe binary /bin/next');
    expect(agents).toEqual([
      { label: 'long', ipctype: PIPE, argv: ['/bin/agent', '-d', '9', '-l', 'log'], line: 1 },
      { label: 'next', ipctype: PIPE, argv: ['/bin/next'], line: 4 },
    ]);
  });

  it('skips the notready keywords of a pipe agent and reads keywords in any case', () => {
    expect(parsePmcdConf('slow 9 PIPE Binary notready NOTREADY /bin/agent -x').agents).toEqual([
      { label: 'slow', ipctype: PIPE, argv: ['/bin/agent', '-x'], line: 1 },
    ]);
  });

  it('reads socket agents with a command, and leaves out those pmcd only connects to', () => {
    const { agents } = parsePmcdConf(['s1 9 socket inet 2345 /bin/agent -p 2345', 's2 10 socket unix /run/agent.sock', 's3 11 socket ipv6 2346 /bin/six'].join('\n'));
    expect(agents).toEqual([
      { label: 's1', ipctype: SOCKET, argv: ['/bin/agent', '-p', '2345'], line: 1 },
      { label: 's3', ipctype: SOCKET, argv: ['/bin/six'], line: 3 },
    ]);
  });

  it('reports lines pmcd rejects and keeps the others', () => {
    const text = ['bad x pipe binary /bin/a', 'odd 9 pipe text /bin/b', 'none 10 pipe binary', 'what 11 fifo /bin/c', 'good 12 pipe binary /bin/d'].join('\n');
    const { agents, problems } = parsePmcdConf(text);
    expect(agents.map((a) => a.label)).toEqual(['good']);
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/^line 1: .*domain number/);
  });

  it("takes carriage returns, vertical tabs and form feeds as white space (a pmcd.conf with CRLF line ends)", () => {
    const { agents, problems } = parsePmcdConf('a 9 pipe binary /bin/a -x\r\nb\v10\fpipe binary /bin/b\r\n');
    expect(problems).toEqual([]);
    expect(agents).toEqual([
      { label: 'a', ipctype: PIPE, argv: ['/bin/a', '-x'], line: 1 },
      { label: 'b', ipctype: PIPE, argv: ['/bin/b'], line: 2 },
    ]);
  });

  it('takes a quoted label that starts with [ as a label, not as the [access] section', () => {
    expect(parsePmcdConf('"[odd]" 9 pipe binary /bin/a\nafter 10 pipe binary /bin/b').agents.map((a) => a.label)).toEqual(['[odd]', 'after']);
  });

  it('reports a label alone, a domain that is not all digits, and a socket line without a known address domain or a port', () => {
    const text = ['alone', 'a x9 pipe binary /bin/a', 'b 9x pipe binary /bin/b', 's1 9 socket tcp 2345 /bin/s', 's2 9 socket inet', 'ok 9 socket unix /run/s.sock /bin/ok'].join('\n');
    const { agents, problems } = parsePmcdConf(text);
    expect(agents).toEqual([{ label: 'ok', ipctype: SOCKET, argv: ['/bin/ok'], line: 6 }]);
    expect(problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5']);
  });

  it('says which word is wrong in each rejected line', () => {
    const { problems } = parsePmcdConf(['odd 9 pipe text /bin/b', 'none 10 pipe binary', 'what 11 fifo /bin/c'].join('\n'));
    expect(problems).toEqual([
      expect.stringMatching(/^line 1: .*binary/),
      expect.stringMatching(/^line 2: .*command/),
      expect.stringMatching(/^line 3: .*dso, socket or pipe/),
    ]);
  });

  it('gives no agent at all for a file with an unterminated quote, as pmcd gives up on it', () => {
    const { agents, problems } = parsePmcdConf('good 9 pipe binary /bin/a\nbad 10 pipe binary /bin/sh -c "oops\nlater 11 pipe binary /bin/b');
    expect(agents).toEqual([]);
    expect(problems).toEqual(['line 2: unterminated quoted string (pmcd gives up on the file)']);
  });
});

describe('pmcdConfPath', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-pmcdconf-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes $PCP_PMCDCONF_PATH first, then pcp.conf's PCP_PMCDCONF_PATH, then the default", () => {
    const pcpConf = join(dir, 'pcp.conf');
    writeFileSync(pcpConf, '# pcp.conf\nPCP_VAR_DIR=/var/lib/pcp\nPCP_PMCDCONF_PATH=/opt/pcp/pmcd.conf\n');
    expect(pmcdConfPath({ PCP_PMCDCONF_PATH: '/x/pmcd.conf', PCP_CONF: pcpConf })).toBe('/x/pmcd.conf');
    expect(pmcdConfPath({ PCP_CONF: pcpConf })).toBe('/opt/pcp/pmcd.conf');
    expect(pmcdConfPath({ PCP_CONF: join(dir, 'missing.conf') })).toBe(DEFAULT_PMCD_CONF);
  });

  it("reads pcp.conf as the shell does: an empty variable is unset, a commented line does not count, quotes and trailing blanks go", () => {
    const pcpConf = join(dir, 'quoted.conf');
    writeFileSync(pcpConf, '# PCP_PMCDCONF_PATH=/commented/pmcd.conf\nPCP_PMCDCONF_PATH=\nPCP_PMCDCONF_PATH="/quoted/pmcd.conf"  \n');
    expect(pmcdConfPath({ PCP_PMCDCONF_PATH: '', PCP_CONF: pcpConf })).toBe('/quoted/pmcd.conf');
    for (const [value, expected] of [
      ['x"/a"', 'x"/a"'],
      ['"/a"b', '"/a"b'],
      ['"/ab"', '/ab'],
    ]) {
      writeFileSync(pcpConf, `PCP_PMCDCONF_PATH=${value}\n`);
      expect(pmcdConfPath({ PCP_CONF: pcpConf })).toBe(expected);
    }
  });
});

describe('PmcdConfAgents', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-pmcdconf-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('re-reads the file when it changes, and says why when it cannot be read', () => {
    const path = join(dir, 'pmcd.conf');
    writeFileSync(path, 'a 9 pipe binary /bin/a\n');
    const conf = new PmcdConfAgents(() => path);
    expect(conf.current().agents.map((a) => a.label)).toEqual(['a']);
    writeFileSync(path, 'a 9 pipe binary /bin/a\nb 10 pipe binary /bin/b\n');
    // Same size and an mtime set back: the inode's change time still moves.
    utimesSync(path, new Date(0), new Date(0));
    expect(conf.current().agents.map((a) => a.label)).toEqual(['a', 'b']);
    unlinkSync(path);
    expect(conf.current()).toEqual({ path, agents: [], problems: [], error: `cannot read ${path}: ENOENT` });
  });

  it('sees a rewrite of the same size within the same second by its nanosecond times', () => {
    const path = join(dir, 'same-size.conf');
    writeFileSync(path, 'a 9 pipe binary /bin/a\n');
    utimesSync(path, 1000.001, 1000.001);
    const conf = new PmcdConfAgents(() => path);
    expect(conf.current().agents.map((a) => a.label)).toEqual(['a']);
    writeFileSync(path, 'b 9 pipe binary /bin/b\n');
    utimesSync(path, 1000.002, 1000.002);
    expect(conf.current().agents.map((a) => a.label)).toEqual(['b']);
  });
});
