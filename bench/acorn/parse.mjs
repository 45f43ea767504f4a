// Parse files with acorn and report timings as JSON: the reference point for the Python analyzer.
// Usage: node parse.mjs ROUNDS FILE... (a file ending in .mjs is parsed as a module)
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as acorn from 'acorn';

const [rounds, ...files] = process.argv.slice(2);
const sources = files.map((file) => ({
  file,
  text: readFileSync(file, 'utf8').replace(/^\uFEFF/, ''),
  sourceType: file.endsWith('.mjs') ? 'module' : 'script',
}));

function parseAll() {
  const started = performance.now();
  for (const { text, sourceType } of sources) {
    acorn.parse(text, {
      ecmaVersion: 'latest', sourceType, locations: true, ranges: true,
      allowHashBang: true, allowReturnOutsideFunction: sourceType === 'script',
    });
  }
  return performance.now() - started;
}

const first = parseAll();
const times = [];
for (let i = 0; i < Number(rounds); i++) times.push(parseAll());
const bytes = sources.reduce((sum, s) => sum + Buffer.byteLength(s.text), 0);
process.stdout.write(JSON.stringify({
  acorn: acorn.version, node: process.version, bytes, first_ms: first,
  best_ms: Math.min(...times), mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
}));
