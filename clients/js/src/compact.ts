// The compact state encoding `c1` (`&enc=c1`; docs/clients.md "State sync on the wire"):
// `$p` frames are a flat list where each path gets a number once per stream:
//   k, v        set path #k to v (replace, add a member, or append at index == length)
//   "/p", v     define the next number as "/p", then set it
//   [k] / ["/p"]          remove that member
//   [k, n] / ["/p", n]    truncate the array at that path to length n
//   null        forget every path number
// A `$state` empties the table; `$paths` (["/p", ...]) right after it sets it.
// Applied copy-on-write like RFC 6902 patches, but each container is copied once per patch.

import { PatchError, formatPointer, parsePointer } from './patch.js';

type Container = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is Container {
  return value !== null && typeof value === 'object';
}

/** One stream's path numbers: the parsed pointer of each. */
export class PathTable {
  private paths: string[][] = [];

  /** Start over (a `$state`, or a `null` op). */
  reset(paths: readonly string[] = []): void {
    this.paths = paths.map((p) => parsePointer(p));
  }

  get size(): number { return this.paths.length; }

  /** The path an op names: a number already defined, or a new definition. */
  resolve(ref: unknown): string[] {
    if (typeof ref === 'number') {
      const parts = this.paths[ref];
      if (parts === undefined) throw new PatchError(`unknown path number ${ref}`);
      return parts;
    }
    if (typeof ref === 'string') {
      const parts = parsePointer(ref);
      this.paths.push(parts);
      return parts;
    }
    throw new PatchError(`a c1 path is a number or a string, got ${JSON.stringify(ref)}`);
  }
}

function validIndex(key: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(key)) throw new PatchError(`bad array index ${JSON.stringify(key)}`);
  return Number(key);
}

/** Copy-on-write of one patch: containers copied in this patch are edited in place. */
class Writer {
  root: unknown;
  private fresh = new Set<Container>();

  constructor(doc: unknown) {
    this.root = doc;
  }

  private own(node: Container): Container {
    if (this.fresh.has(node)) return node;
    const copy = Array.isArray(node) ? node.slice() : { ...node };
    this.fresh.add(copy);
    return copy;
  }

  /** The (own) container that holds the last part of `parts`. */
  private parent(parts: readonly string[]): Container {
    if (!isContainer(this.root)) throw new PatchError(`path ${formatPointer(parts)} does not exist`);
    let node = this.own(this.root);
    this.root = node;
    for (let i = 0; i < parts.length - 1; i += 1) {
      const key = parts[i];
      const at: string | number = Array.isArray(node) ? validIndex(key) : key;
      const child = (node as Record<string | number, unknown>)[at];
      if (!isContainer(child) || (!Array.isArray(node) && !Object.prototype.hasOwnProperty.call(node, key))) {
        throw new PatchError(`path ${formatPointer(parts)} does not exist`);
      }
      const copy = this.own(child);
      (node as Record<string | number, unknown>)[at] = copy;
      node = copy;
    }
    return node;
  }

  set(parts: readonly string[], value: unknown): void {
    if (parts.length === 0) {
      this.root = value;
      return;
    }
    const node = this.parent(parts);
    const key = parts[parts.length - 1];
    if (Array.isArray(node)) {
      const index = validIndex(key);
      if (index > node.length) throw new PatchError(`array index ${index} out of range (length ${node.length})`);
      node[index] = value;
    } else {
      node[key] = value;
    }
  }

  remove(parts: readonly string[]): void {
    if (parts.length === 0) throw new PatchError('cannot remove the whole state');
    const node = this.parent(parts);
    const key = parts[parts.length - 1];
    if (Array.isArray(node)) {
      const index = validIndex(key);
      if (index >= node.length) throw new PatchError(`array index ${index} out of range (length ${node.length})`);
      node.splice(index, 1);
    } else {
      if (!Object.prototype.hasOwnProperty.call(node, key)) throw new PatchError(`no member ${formatPointer(parts)}`);
      delete node[key];
    }
  }

  truncate(parts: readonly string[], length: unknown): void {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw new PatchError(`bad array length ${JSON.stringify(length)}`);
    }
    let target: unknown;
    if (parts.length === 0) {
      if (!Array.isArray(this.root)) throw new PatchError('the state is not an array');
      target = this.root = this.own(this.root);
    } else {
      const node = this.parent(parts);
      const key = parts[parts.length - 1];
      const at: string | number = Array.isArray(node) ? validIndex(key) : key;
      const arr = (node as Record<string | number, unknown>)[at];
      if (!Array.isArray(arr)) throw new PatchError(`${formatPointer(parts)} is not an array`);
      target = (node as Record<string | number, unknown>)[at] = this.own(arr);
    }
    const arr = target as unknown[];
    if (length > arr.length) throw new PatchError(`cannot truncate ${arr.length} items to ${length}`);
    arr.length = length;
  }
}

/**
 * A whole `$p` patch applied to `doc` (left untouched); `table` is extended by its definitions.
 * On an error the table may hold definitions of the failed patch: the caller resyncs anyway.
 */
export function applyCompact<T = unknown>(doc: T, ops: unknown, table: PathTable): T {
  if (!Array.isArray(ops)) throw new PatchError('a c1 patch is a list');
  const w = new Writer(doc);
  let i = 0;
  while (i < ops.length) {
    const item = ops[i];
    if (item === null) {
      table.reset();
      i += 1;
    } else if (Array.isArray(item)) {
      const parts = table.resolve(item[0]);
      if (item.length === 1) w.remove(parts);
      else w.truncate(parts, item[1]);
      i += 1;
    } else {
      if (i + 1 >= ops.length) throw new PatchError('a c1 set has no value');
      w.set(table.resolve(item), ops[i + 1]);
      i += 2;
    }
  }
  return w.root as T;
}
