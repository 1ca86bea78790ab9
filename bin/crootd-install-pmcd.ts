/**
 * `crootd install-pmcd` / `crootd uninstall-pmcd`: makes crootd pmcd's root
 * agent, and puts everything back (pmda/pmcd-install.ts does the work).
 *
 * install-pmcd writes pmcd.conf's `root` line as `root 1 pipe binary
 * <this package>/bin/crootd --pmda` (added first when there is none),
 * keeping the file in `pmcd.conf.croot-pmda-backup`; makes pmcd wait at
 * least 20 s (`-q` in pmcd.options, kept the same way) for its first PDU; puts the root PMDA's
 * PMNS, help and domain.h in `$PCP_PMDAS_DIR/croot/`, links
 * `$PCP_VAR_DIR/pmns/root_croot` to its PMNS and merges the names into
 * `$PCP_VAR_DIR/pmns/root` (kept in `root.croot-pmda-backup`); restarts
 * pmcd if it runs. uninstall-pmcd stops pmcd if it runs, puts pmcd.conf and
 * the PMNS back byte for byte (or, when something else changed them since,
 * only undoes its own changes), removes its files, and starts pmcd again.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { CrootError } from '../core/errors/croot-error.js';
import { installPmda, removePmda } from '../pmda/pmcd-install.js';
import { rootPmda } from '../pmda/root-pmda.js';

/** The folder under $PCP_PMDAS_DIR, and the tag of the backups. */
export const INSTALL_DIR = 'croot';

/**
 * pmcd waits 3 s by default for a new agent's first PDU; crootd sends it
 * once its modules are loaded and its socket listens, which on a loaded
 * host takes longer than that: pmcd is given this many seconds instead.
 */
export const DEFAULT_TIMEOUT = 20;

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CrootError('ERR_CONFIG', `--timeout wants whole seconds, got "${value}"`);
  return n;
}

/** `crootd install-pmcd|uninstall-pmcd [options]`; returns the exit code. */
export async function pmcdInstallCommand(argv: readonly string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const install = verb === 'install-pmcd';
  const program = new Command(`crootd ${verb ?? ''}`)
    .description(install ? "make crootd pmcd's root agent (pmcd.conf's root line, PMNS and help)" : 'undo crootd install-pmcd')
    .option('--no-restart', 'leave pmcd alone (it picks the change up when it next starts)')
    .exitOverride();
  if (install) {
    program
      .option('--command <command>', "the root line's command (default: this crootd with --pmda)")
      .option('-q, --timeout <seconds>', "at least this pmcd -q in pmcd.options: seconds pmcd waits for crootd's first PDU", parseSeconds, DEFAULT_TIMEOUT);
  }
  program.parse(rest, { from: 'user' });
  const opts = program.opts<{ restart: boolean; command?: string; timeout: number }>();
  if (process.getuid?.() !== 0) throw new CrootError('ERR_NOT_PERMITTED', `crootd ${verb ?? ''} must run as root`);
  const say = (line: string): void => void process.stderr.write(`crootd ${verb ?? ''}: ${line}\n`);
  if (install) {
    installPmda({
      pmda: rootPmda({ source: { containers: () => [] } }),
      command: opts.command ?? `${resolve(__dirname, '..', '..', 'bin', 'crootd')} --pmda`,
      label: 'root',
      dir: INSTALL_DIR,
      first: true,
      negotiationTimeout: opts.timeout,
      restart: opts.restart,
      say,
    });
  } else removePmda({ label: 'root', dir: INSTALL_DIR, restart: opts.restart, say });
  return 0;
}
