// RFC 6901 JSON Pointers and RFC 6902 JSON Patch, applied copy-on-write: every container on a
// changed path is copied, the rest is shared. So the state before a patch stays intact (listeners
// get the previous value, and UI frameworks see a new object exactly where something changed).

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface PatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

export class PatchError extends Error {
  override name = 'PatchError';
}

/** `/a/b~1c` -> ['a', 'b/c']; '' -> [] (the whole document). */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`a JSON Pointer starts with "/": ${JSON.stringify(pointer)}`);
  return pointer.slice(1).split('/').map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function formatPointer(parts: readonly string[]): string {
  return parts.map((part) => '/' + part.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return value !== null && typeof value === 'object';
}

function arrayIndex(arr: unknown[], key: string, forAdd: boolean): number {
  if (forAdd && key === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(key)) throw new PatchError(`bad array index ${JSON.stringify(key)}`);
  const index = Number(key);
  if (index > arr.length || (!forAdd && index === arr.length)) {
    throw new PatchError(`array index ${index} out of range (length ${arr.length})`);
  }
  return index;
}

/** The value at `parts`, or undefined when the path does not exist. */
export function getAt(doc: unknown, parts: readonly string[]): unknown {
  let node = doc;
  for (const key of parts) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key)) return undefined;
      node = node[Number(key)];
    } else if (isContainer(node)) {
      if (!Object.prototype.hasOwnProperty.call(node, key)) return undefined;
      node = (node as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
  }
  return node;
}

function shallowCopy(node: Record<string, unknown> | unknown[]): Record<string, unknown> | unknown[] {
  return Array.isArray(node) ? node.slice() : { ...node };
}

/**
 * A copy of `doc` where `edit` ran on a fresh copy of the parent container of `parts` (which must
 * exist); `edit` gets the parent and the last key.
 */
function editParent(doc: unknown, parts: readonly string[],
  edit: (parent: Record<string, unknown> | unknown[], key: string) => void): unknown {
  const root = isContainer(doc) ? shallowCopy(doc) : doc;
  let node: unknown = root;
  for (let i = 0; i < parts.length - 1; i += 1) {
    const key = parts[i];
    if (!isContainer(node)) throw new PatchError(`path ${formatPointer(parts)} does not exist`);
    const container = node as Record<string, unknown> & unknown[];
    const at = Array.isArray(node) ? arrayIndex(node, key, false) : key;
    const child = container[at as number];
    if (!isContainer(child) || (!Array.isArray(node) && !Object.prototype.hasOwnProperty.call(node, key))) {
      throw new PatchError(`path ${formatPointer(parts)} does not exist`);
    }
    const copy = shallowCopy(child);
    container[at as number] = copy;
    node = copy;
  }
  if (!isContainer(node)) throw new PatchError(`path ${formatPointer(parts)} does not exist`);
  edit(node, parts[parts.length - 1]);
  return root;
}

function add(doc: unknown, parts: string[], value: unknown): unknown {
  if (parts.length === 0) return value;
  return editParent(doc, parts, (parent, key) => {
    if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
    else parent[key] = value;
  });
}

function remove(doc: unknown, parts: string[]): unknown {
  if (parts.length === 0) return null;
  return editParent(doc, parts, (parent, key) => {
    if (Array.isArray(parent)) {
      parent.splice(arrayIndex(parent, key, false), 1);
    } else {
      if (!Object.prototype.hasOwnProperty.call(parent, key)) throw new PatchError(`no member ${formatPointer(parts)}`);
      delete parent[key];
    }
  });
}

function replace(doc: unknown, parts: string[], value: unknown): unknown {
  if (parts.length === 0) return value;
  return editParent(doc, parts, (parent, key) => {
    if (Array.isArray(parent)) {
      parent[arrayIndex(parent, key, false)] = value;
    } else {
      if (!Object.prototype.hasOwnProperty.call(parent, key)) throw new PatchError(`no member ${formatPointer(parts)}`);
      parent[key] = value;
    }
  });
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k)
    && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export { deepEqual };

/** One operation applied to `doc`; returns the new document (the old one is left untouched). */
export function applyOperation(doc: unknown, op: PatchOperation): unknown {
  const parts = parsePointer(op.path);
  switch (op.op) {
    case 'add':
      return add(doc, parts, op.value);
    case 'remove':
      return remove(doc, parts);
    case 'replace':
      return replace(doc, parts, op.value);
    case 'move': {
      const from = parsePointer(op.from ?? '');
      const value = getAt(doc, from);
      if (value === undefined) throw new PatchError(`move from missing ${op.from}`);
      return add(remove(doc, from), parts, value);
    }
    case 'copy': {
      const value = getAt(doc, parsePointer(op.from ?? ''));
      if (value === undefined) throw new PatchError(`copy from missing ${op.from}`);
      return add(doc, parts, value);
    }
    case 'test':
      if (!deepEqual(getAt(doc, parts), op.value)) throw new PatchError(`test failed at ${op.path}`);
      return doc;
    default:
      throw new PatchError(`unknown patch operation ${JSON.stringify((op as { op: unknown }).op)}`);
  }
}

/** A whole patch, atomically: on a failing operation the error is thrown and `doc` is unchanged. */
export function applyPatch<T = unknown>(doc: T, ops: readonly PatchOperation[]): T {
  let out: unknown = doc;
  for (const op of ops) out = applyOperation(out, op);
  return out as T;
}
