/**
 * The files a PMDA puts in `$PCP_PMDAS_DIR/<name>/`, as PCP's own PMDAs
 * ship them: `root_<name>` (its PMNS, which `pmnsadd` merges into
 * `$PCP_VAR_DIR/pmns/root` and PMNS rebuilds pick up through a link in
 * `$PCP_VAR_DIR/pmns/`), `help` (newhelp's ASCII input, for newhelp,
 * chkhelp and dbpmda) and `domain.h`.
 */
import type { Pmda } from './define-pmda.js';
import { indomParts } from './identifiers.js';

export interface PmdaFiles {
  /** `root_<name>`: pmns(5) text with `root { ... }`. */
  readonly pmns: string;
  /** `help`: newhelp(1) input. */
  readonly help: string;
  /** `domain.h`: `#define <MACRO> <domain>`. */
  readonly domainH: string;
}

/** newhelp(1)'s input for every metric and instance domain of `pmda`. */
export function helpFileText(pmda: Pmda): string {
  const out = [`# Help text of the ${pmda.definition.name} PMDA (domain ${pmda.domain}), written by croot.`, ''];
  for (const d of pmda.definition.indoms ?? []) {
    if (d.help === undefined) continue;
    out.push(`@ ${pmda.domain}.${indomParts((pmda.domain << 22) | d.serial).serial} ${d.help.oneline}`);
    if (d.help.text) out.push(d.help.text);
    out.push('');
  }
  for (const m of pmda.metricList) {
    out.push(`@ ${m.name} ${m.help.oneline}`);
    if (m.help.text) out.push(m.help.text);
    out.push('');
  }
  return out.join('\n');
}

export function pmdaFiles(pmda: Pmda, macro = pmda.definition.name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')): PmdaFiles {
  return {
    pmns: pmda.names.pmnsText(macro, pmda.domain),
    help: helpFileText(pmda),
    domainH: `/* written by croot */\n#define ${macro} ${pmda.domain}\n`,
  };
}
