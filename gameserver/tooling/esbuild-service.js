'use strict';
// esbuild for gameserver/project.py as a long-lived service: one `node` start (and one esbuild
// child) serves every build of a burst instead of two per build, and TypeScript compiled once is
// kept by content hash, so a one-line change recompiles one file. The JavaScript API is used (not
// the CLI) so that errors come back with their file, line and column as JSON.
//
// Requests and answers are JSON, one per line, on stdin and stdout, answered in order; the service
// exits when stdin closes (the builder stopped it, or the builder's process is gone).
//   {"op": "transform", "files": {"src/a.ts": "<source>", ...}}
//     -> {"files": {"src/a.ts": {"code", "map"}}, "errors": [...], "stats": {...}}
//        each TypeScript file compiled on its own (imports kept as written), for the analyzer;
//   {"op": "build", "root": "/abs/project", "entry": "src/index.ts", "outfile": "/abs/.gsf/game.js",
//    "files": {...as for transform...}}
//     -> the transform's answer plus "bundle": {"errors": [...], "warnings": [...]}: the same
//        compiled files (with their source maps, so the bundle's map names the .ts lines) bundled
//        into one CommonJS file; npm packages stay `require`d from node_modules.
//   any failure of the service itself -> {"fatal": "<message>"}
// An error is {"file", "line" (1-based), "column" (1-based), "text", "line_text"}; "stats" counts
// the files compiled by this request ("transformed") and those found in the cache ("cached").

const crypto = require('crypto');
const path = require('path');
const readline = require('readline');
const esbuild = require('esbuild');

const CACHE_LIMIT = 4096; // compiled files kept (least recently used first out)
const TYPESCRIPT = /\.(ts|mts|cts)$/i;
const cache = new Map(); // sha256(name + source) -> {code, map} | {errors}

function located(message, file) {
  const loc = message.location || {};
  return {
    file: file !== undefined ? file : loc.file || '',
    line: loc.line || 1,
    column: (loc.column || 0) + 1,
    text: message.text,
    line_text: loc.lineText || '',
  };
}

// The map names the file by its base name: it sits beside the file, so a bundle that reads it
// resolves that name to the .ts file itself (a relative path would be resolved twice).
async function compileOne(file, source) {
  const name = path.posix.basename(file);
  const key = crypto.createHash('sha256').update(name).update('\0').update(source).digest('hex');
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
    return [hit, true];
  }
  let result;
  try {
    const out = await esbuild.transform(source, {
      loader: 'ts', sourcefile: name, sourcemap: 'external', target: 'node20', logLevel: 'silent',
    });
    result = { code: out.code, map: out.map };
  } catch (err) {
    result = { errors: (err.errors || [{ text: String(err && err.message) }]).map((m) => located(m, file)) };
  }
  cache.set(key, result);
  if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value);
  return [result, false];
}

async function transform(files) {
  const out = {};
  const errors = [];
  const stats = { transformed: 0, cached: 0 };
  const entries = Object.entries(files || {});
  const results = await Promise.all(entries.map(([file, source]) => compileOne(file, source)));
  entries.forEach(([file], i) => {
    const [result, cached] = results[i];
    stats[cached ? 'cached' : 'transformed'] += 1;
    if (result.errors) errors.push(...result.errors);
    else out[file] = result;
  });
  return { files: out, errors, stats };
}

// Files the transform compiled are handed to the bundler as compiled, each with its source map
// inline (esbuild chains it into the bundle's map); anything else esbuild reads from `root`.
function compiledFiles(root, compiled) {
  return {
    name: 'gsf-compiled',
    setup(build) {
      build.onLoad({ filter: TYPESCRIPT }, (args) => {
        const rel = path.relative(root, args.path).split(path.sep).join('/');
        const done = compiled[rel];
        if (done === undefined) return undefined;
        const inline = Buffer.from(done.map).toString('base64');
        // Loaded as TypeScript: an import of a name that is only a type elides as it would have.
        return { contents: `${done.code}//# sourceMappingURL=data:application/json;base64,${inline}\n`, loader: 'ts' };
      });
    },
  };
}

async function bundle(request, compiled) {
  try {
    const result = await esbuild.build({
      absWorkingDir: request.root,
      entryPoints: [request.entry],
      outfile: request.outfile,
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      sourcemap: true,
      logLevel: 'silent',
      plugins: [compiledFiles(request.root, compiled)],
    });
    return { errors: [], warnings: result.warnings.map((m) => located(m)) };
  } catch (err) {
    return { errors: (err.errors || [{ text: String(err && err.message) }]).map((m) => located(m)), warnings: [] };
  }
}

async function answer(request) {
  const compiled = await transform(request.files);
  if (request.op === 'transform') return compiled;
  if (request.op === 'build') return { ...compiled, bundle: await bundle(request, compiled.files) };
  return { fatal: `unknown op ${JSON.stringify(request.op)}` };
}

async function main() {
  // esbuild's own process starts on first use: start it now, while no request waits for it.
  const warm = esbuild.transform('', { loader: 'ts' }).catch(() => undefined);
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let reply;
    await warm;
    try {
      reply = await answer(JSON.parse(line));
    } catch (err) {
      reply = { fatal: String(err && err.stack ? err.stack : err) };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
  await esbuild.stop();
}

main().catch((err) => {
  process.stderr.write(`esbuild-service: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
