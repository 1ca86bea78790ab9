/**
 * A PMDA's part of the PMNS, built from its metric names: answers pmcd's
 * PMNS requests (children, traversal, name <-> PMID) and writes the ASCII
 * PMNS that `pmnsadd` merges into `$PCP_VAR_DIR/pmns/root`.
 */
import { CrootError } from '../core/errors/croot-error.js';
import { pmidParts } from './identifiers.js';

/** PMNS_LEAF_STATUS / PMNS_NONLEAF_STATUS of a children-with-status reply. */
export const PMNS_LEAF = 0;
export const PMNS_NONLEAF = 1;

const COMPONENT = /^[A-Za-z][A-Za-z0-9_]*$/;

interface Node {
  readonly children: Map<string, Node>;
  pmid?: number;
}

export class NameTree {
  private readonly root: Node = { children: new Map() };
  private readonly byPmid = new Map<number, string>();
  private readonly byName = new Map<string, number>();

  /** `names`: full metric name -> PMID. Throws a CrootError `ERR_CONFIG` for a name PCP would not accept. */
  constructor(names: Iterable<readonly [string, number]>) {
    for (const [name, id] of names) this.add(name, id);
  }

  private add(name: string, id: number): void {
    const parts = name.split('.');
    if (parts.some((p) => !COMPONENT.test(p))) {
      throw new CrootError('ERR_CONFIG', `metric name "${name}": each part must start with a letter and hold only letters, digits and _`);
    }
    if (this.byName.has(name)) throw new CrootError('ERR_CONFIG', `metric name "${name}" defined twice`);
    if (this.byPmid.has(id)) throw new CrootError('ERR_CONFIG', `"${name}" and "${this.byPmid.get(id) ?? ''}" have the same PMID`);
    let node = this.root;
    parts.forEach((part, i) => {
      let next = node.children.get(part);
      if (next === undefined) {
        next = { children: new Map() };
        node.children.set(part, next);
      }
      if (next.pmid !== undefined || (i === parts.length - 1 && next.children.size > 0)) {
        throw new CrootError('ERR_CONFIG', `metric name "${name}" is both a metric and a branch of another metric's name`);
      }
      node = next;
    });
    node.pmid = id;
    this.byName.set(name, id);
    this.byPmid.set(id, name);
  }

  pmidOf(name: string): number | undefined {
    return this.byName.get(name);
  }

  nameOf(id: number): string | undefined {
    return this.byPmid.get(id >>> 0);
  }

  /** The top-level names (`containers` for containers.*). */
  get tops(): readonly string[] {
    return [...this.root.children.keys()];
  }

  private find(name: string): Node | undefined {
    if (name === '') return this.root;
    let node: Node | undefined = this.root;
    for (const part of name.split('.')) {
      node = node.children.get(part);
      if (node === undefined) return undefined;
    }
    return node;
  }

  /** Children of a non-leaf name, with leaf/non-leaf statuses; undefined for a leaf or an unknown name. */
  children(name: string): { readonly names: readonly string[]; readonly statuses: readonly number[] } | undefined {
    const node = this.find(name);
    if (node === undefined || node.pmid !== undefined) return undefined;
    const names = [...node.children.keys()];
    return { names, statuses: names.map((n) => (node.children.get(n)?.pmid !== undefined ? PMNS_LEAF : PMNS_NONLEAF)) };
  }

  /** Every metric name at or below `name`, in definition order; empty for an unknown name. */
  traverse(name: string): readonly string[] {
    const prefix = name === '' ? '' : `${name}.`;
    return [...this.byName.keys()].filter((n) => n === name || n.startsWith(prefix));
  }

  /**
   * The ASCII PMNS of these names (pmns(5)), with PMIDs written as
   * `DOMAIN:cluster:item` under `#define DOMAIN <n>`, as PCP's own PMDAs
   * ship their `pmns` files; `root { ... }` first when `withRoot`.
   */
  pmnsText(domainMacro: string, domain: number, withRoot = true): string {
    const out: string[] = [`#ifndef ${domainMacro}`, `#define ${domainMacro} ${domain}`, '#endif', ''];
    if (withRoot) out.push('root {', ...this.tops.map((t) => `\t${t}`), '}', '');
    const walk = (path: string, node: Node): void => {
      out.push(`${path} {`);
      for (const [part, child] of node.children) {
        if (child.pmid !== undefined) {
          const p = pmidParts(child.pmid);
          out.push(`\t${part}\t\t${domainMacro}:${p.cluster}:${p.item}`);
        } else out.push(`\t${part}`);
      }
      out.push('}', '');
      for (const [part, child] of node.children) if (child.pmid === undefined) walk(`${path}.${part}`, child);
    };
    for (const [top, node] of this.root.children) walk(top, node);
    return out.join('\n');
  }
}
