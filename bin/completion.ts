/**
 * `croot completion bash|zsh`: shell completion for croot's commands,
 * options, engine ids, states, and the names of the containers `croot list`
 * shows (with the same --socket/--config as the line being completed).
 */
import { CrootError } from '../core/errors/croot-error.js';

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

const COMMANDS: ReadonlyArray<readonly [string, string]> = [
  ['hostname', "the container's hostname"],
  ['pid', "the container's init PID"],
  ['cgroup', "the container's cgroup"],
  ['show', 'everything croot knows of one container'],
  ['list', 'every container of every engine'],
  ['engines', 'engine health'],
  ['status', 'a running crootd: uptime, engines, connections, requests'],
  ['events', 'changes as they happen'],
  ['completion', 'shell completion script'],
  ['help', 'help for a command'],
];
const STATES = ['running', 'paused', 'restarting', 'stopped'];

export function completionScript(shell: string, engineIds: readonly string[]): string {
  if (shell === 'bash') return bash(engineIds);
  if (shell === 'zsh') return zsh(engineIds);
  throw new CrootError('ERR_CONFIG', `completion: unknown shell "${shell}" (bash or zsh)`);
}

function bash(engineIds: readonly string[]): string {
  return `# croot completion for bash. Load it with:  eval "$(croot completion bash)"
# or save it as /usr/share/bash-completion/completions/croot
_croot_names() {
  local i where=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -s|--socket|-c|--config) where+=("\${COMP_WORDS[i]}" "\${COMP_WORDS[i+1]}") ;;
    esac
  done
  croot "\${where[@]}" list 2>/dev/null | awk 'NR > 1 { n = split($NF, a, ","); for (i = 1; i <= n; i++) print a[i] }'
}
_croot() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local global="-s --socket -c --config --format --json -V --version -h --help"
  case "$prev" in
    -s|--socket|-c|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "json table" -- "$cur")); return ;;
    --engine) COMPREPLY=($(compgen -W "${engineIds.join(' ')}" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "${STATES.join(' ')}" -- "$cur")); return ;;
    --until-exit) COMPREPLY=($(compgen -W "$(_croot_names)" -- "$cur")); return ;;
    --count) return ;;
  esac
  local cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -s|--socket|-c|--config|--format|--engine|--state|--count|--until-exit) ((i++)) ;;
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$global" -- "$cur")); else COMPREPLY=($(compgen -W "${COMMANDS.map(([c]) => c).join(' ')}" -- "$cur")); fi
    return
  fi
  case "$cmd" in
    list) COMPREPLY=($(compgen -W "-q --quiet --no-trunc --engine --state $global" -- "$cur")) ;;
    engines) COMPREPLY=($(compgen -W "--engine $global" -- "$cur")) ;;
    events) COMPREPLY=($(compgen -W "--no-trunc --engine --state --count --until-exit $global" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "${SHELLS.join(' ')}" -- "$cur")) ;;
    help) COMPREPLY=($(compgen -W "${COMMANDS.map(([c]) => c).join(' ')}" -- "$cur")) ;;
    hostname|pid|cgroup|show)
      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$global" -- "$cur")); else COMPREPLY=($(compgen -W "$(_croot_names)" -- "$cur")); fi ;;
    *) COMPREPLY=($(compgen -W "$global" -- "$cur")) ;;
  esac
}
complete -F _croot croot
`;
}

function zsh(engineIds: readonly string[]): string {
  const commands = COMMANDS.map(([c, d]) => `    '${c}:${d.replace(/'/g, "'\\''")}'`).join('\n');
  return `#compdef croot
# croot completion for zsh. Load it with:  eval "$(croot completion zsh)"  (after compinit)
# or save it as _croot in a folder of $fpath
_croot_names() {
  local -a where names
  local i
  for ((i = 2; i < CURRENT; i++)); do
    case $words[i] in
      -s|--socket|-c|--config) where+=($words[i] $words[i+1]) ;;
    esac
  done
  names=(\${(f)"$(croot $where list 2>/dev/null | awk 'NR > 1 { n = split($NF, a, ","); for (i = 1; i <= n; i++) print a[i] }')"})
  compadd -a names
}
_croot() {
  local -a commands
  commands=(
${commands}
  )
  local context state state_descr line
  typeset -A opt_args
  _arguments -C \\
    '(-s --socket)'{-s,--socket}'[ask this root server]:socket:_files' \\
    '(-c --config)'{-c,--config}'[config file]:config file:_files' \\
    '--format[output format]:format:(json table)' \\
    '--json[JSON output]' \\
    '(- *)'{-V,--version}'[print the version]' \\
    '(- *)'{-h,--help}'[print help]' \\
    '1:command:->command' \\
    '*::argument:->argument'
  case $state in
    command) _describe -t commands 'croot command' commands ;;
    argument)
      case $words[1] in
        hostname|pid|cgroup|show) _croot_names ;;
        list) _arguments '(-q --quiet)'{-q,--quiet}'[ids only]' '--no-trunc[whole ids]' \\
                '*--engine[only this engine]:engine:(${engineIds.join(' ')})' '*--state[only this state]:state:(${STATES.join(' ')})' ;;
        engines) _arguments '*--engine[only this engine]:engine:(${engineIds.join(' ')})' ;;
        events) _arguments '--no-trunc[whole ids]' '*--engine[only this engine]:engine:(${engineIds.join(' ')})' \\
                '*--state[only this state]:state:(${STATES.join(' ')})' '--count[exit after N events]:count:' '--until-exit[exit when it ends]:name:_croot_names' ;;
        completion) _values 'shell' ${SHELLS.join(' ')} ;;
        help) _describe -t commands 'croot command' commands ;;
      esac ;;
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _croot "$@"; else compdef _croot croot; fi
`;
}
