// A game project folder packed in the browser, so the upload page can send it as one archive
// (the API takes a .zip or .tar.gz; it reads either the same way, docs/projects.md). No npm
// dependency: a ustar writer (gzip'd by the browser's CompressionStream) and a store-only zip
// writer for browsers without one. node_modules/ and .git/ are skipped: the platform installs
// dependencies from the lockfile and never reads history.

const SKIPPED = new Set(['node_modules', '.git', '.gsf', '__MACOSX']);
const encoder = new TextEncoder();

/** Whether a path inside the project is one the upload leaves out. */
export function skipped(path) {
  return path.split('/').some((part) => SKIPPED.has(part) || part === '.DS_Store');
}

/** [{path, file}] from an <input webkitdirectory>: paths relative to the chosen folder's parent. */
export function filesFromInput(fileList) {
  return [...fileList].map((file) => ({ path: file.webkitRelativePath || file.name, file }))
    .filter(({ path }) => !skipped(path));
}

/** [{path, file}] under a dropped folder (a FileSystemEntry), skipped folders not even listed. */
export async function filesFromEntry(entry, limit = 20000) {
  const out = [];
  const walk = async (item, prefix) => {
    if (out.length >= limit || SKIPPED.has(item.name)) return;
    const path = prefix ? `${prefix}/${item.name}` : item.name;
    if (item.isFile) {
      out.push({ path, file: await new Promise((resolve, reject) => item.file(resolve, reject)) });
      return;
    }
    const reader = item.createReader();
    for (;;) { // readEntries answers in batches until an empty one
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, path);
    }
  };
  await walk(entry, '');
  return out;
}

// --- tar (ustar) -----------------------------------------------------------------------------

function octal(value, width) {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function tarHeader(name, size, type = '0') {
  const block = new Uint8Array(512);
  const put = (text, at) => block.set(encoder.encode(text), at);
  put(name, 0);
  put(octal(0o644, 8), 100);
  put(octal(0, 8), 108);
  put(octal(0, 8), 116);
  put(octal(size, 12), 124);
  put(octal(0, 12), 136);
  put('        ', 148); // the checksum counts its own field as spaces
  put(type, 156);
  put('ustar\u000000', 257);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

function padding(size) {
  return new Uint8Array((512 - (size % 512)) % 512);
}

/** An uncompressed tar of [{path, bytes}]; a name over 100 bytes gets a PAX `path` record. */
export function tar(entries) {
  const parts = [];
  for (const { path, bytes } of entries) {
    const name = encoder.encode(path);
    if (name.length > 100) {
      const record = (len) => `${len} path=${path}\n`;
      let len = encoder.encode(record(0)).length;
      while (encoder.encode(record(len)).length !== len) len = encoder.encode(record(len)).length;
      const body = encoder.encode(record(len));
      parts.push(tarHeader('PaxHeader', body.length, 'x'), body, padding(body.length));
    }
    parts.push(tarHeader(name.length > 100 ? 'gsf-long-name' : path, bytes.length), bytes, padding(bytes.length));
  }
  parts.push(new Uint8Array(1024));
  return new Blob(parts);
}

// --- zip (stored, no compression) --------------------------------------------------------------

let crcTable = null;

export function crc32(bytes) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function record(fields) {
  const size = fields.reduce((n, [width]) => n + width, 0);
  const view = new DataView(new ArrayBuffer(size));
  let at = 0;
  for (const [width, value] of fields) {
    if (width === 4) view.setUint32(at, value, true);
    else view.setUint16(at, value, true);
    at += width;
  }
  return new Uint8Array(view.buffer);
}

/** A store-only zip of [{path, bytes}] (UTF-8 names, no times). */
export function zip(entries) {
  const parts = [];
  const central = [];
  let offset = 0;
  for (const { path, bytes } of entries) {
    const name = encoder.encode(path);
    const crc = crc32(bytes);
    // version 20, flags: UTF-8 names (bit 11), method 0 (stored), time 0, date 1980-01-01
    const common = [[2, 20], [2, 0x0800], [2, 0], [2, 0], [2, 0x21], [4, crc], [4, bytes.length], [4, bytes.length],
      [2, name.length], [2, 0]];
    const local = record([[4, 0x04034b50], ...common]);
    parts.push(local, name, bytes);
    central.push(record([[4, 0x02014b50], [2, 20], ...common, [2, 0], [2, 0], [2, 0], [4, 0], [4, offset]]),
      name);
    offset += local.length + name.length + bytes.length;
  }
  const size = central.reduce((n, part) => n + part.length, 0);
  const end = record([[4, 0x06054b50], [2, 0], [2, 0], [2, entries.length], [2, entries.length], [4, size],
    [4, offset], [2, 0]]);
  return new Blob([...parts, ...central, end]);
}

/**
 * The project as one archive File named after its folder: a .tar.gz where the browser can gzip,
 * else a store-only .zip. `files` are [{path, file}] with paths under the folder's name.
 */
export async function packProject(folder, files) {
  const entries = [];
  for (const { path, file } of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    entries.push({ path, bytes: new Uint8Array(await file.arrayBuffer()) });
  }
  if (typeof CompressionStream === 'function') {
    const gz = tar(entries).stream().pipeThrough(new CompressionStream('gzip'));
    const blob = await new Response(gz).blob();
    return new File([blob], `${folder}.tar.gz`, { type: 'application/gzip' });
  }
  return new File([zip(entries)], `${folder}.zip`, { type: 'application/zip' });
}
