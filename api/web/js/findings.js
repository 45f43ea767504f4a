// The analyzer's findings, shown inline on the source: line numbers, the offending columns marked,
// the message and hint under the line. Lines and columns are 1-based, as the API reports them (and
// editors show them); end_column is the column just after the last character.

import { h, uid } from './ui.js';

const FULL_LISTING_MAX_LINES = 3000;
const CONTEXT = 2;
const SEVERITY_TEXT = { block: 'Blocking', warn: 'Warning', info: 'Note' };

function marked(text, finding, lineNo) {
  if (!finding || finding.line !== lineNo) return [text];
  const start = Math.min(Math.max(finding.column - 1, 0), text.length);
  let end = finding.end_line === finding.line ? finding.end_column - 1 : text.length;
  if (end <= start) end = Math.min(text.length, start + 1);
  return [
    text.slice(0, start),
    h('mark', { class: `hl hl-${finding.severity}`, title: `${finding.rule}: ${finding.message}` },
      text.slice(start, end) || ' '),
    text.slice(end),
  ];
}

function findingNote(finding, id) {
  return h('div', { class: `finding finding-${finding.severity}`, id, tabindex: '-1' },
    h('p', { class: 'finding-head' },
      h('span', { class: `severity severity-${finding.severity}` }, SEVERITY_TEXT[finding.severity] ?? finding.severity),
      ' ', h('strong', {}, `Line ${finding.line}, column ${finding.column}`),
      ' · ', h('code', {}, finding.rule)),
    h('p', { class: 'finding-message' }, finding.message),
    finding.hint ? h('p', { class: 'finding-hint' }, finding.hint) : null);
}

function codeRow(lineNo, text, finding) {
  return h('tr', { class: finding ? `src-line src-flagged src-${finding.severity}` : 'src-line',
    dataset: { line: lineNo } },
  h('th', { scope: 'row', class: 'ln' }, String(lineNo)),
  h('td', { class: 'code' }, h('code', {}, ...marked(text, finding, lineNo))));
}

function noteRow(note) {
  return h('tr', { class: 'note-row' }, h('td', { colspan: 2 }, note));
}

function summarize(findings, blocking, analysisOnly) {
  const count = (n, what) => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (analysisOnly) {
    // "Check code only": nothing was uploaded for deployment, so nothing was refused.
    const verdict = blocking
      ? `${count(blocking, 'blocking finding')}: a deployment of this code would be refused.`
      : findings.length ? `${count(findings.length, 'finding')}, none blocking: this code can be deployed.`
        : 'No findings: this code can be deployed.';
    return `${verdict} Analysis only: nothing was deployed.`;
  }
  return blocking ? `${count(blocking, 'blocking finding')}: the upload was refused.`
    : findings.length ? `${count(findings.length, 'finding')}, none blocking.` : 'No findings.';
}

/**
 * Everything about one report: a summary, a list of findings linking into the source, the source.
 * `analysisOnly`: the report of "Check code only" (nothing was deployed, so nothing was refused).
 */
export function renderFindings(report, source = null, { title = 'Analysis', analysisOnly = false } = {}) {
  // The API's order: most severe first, security before contract, then by position.
  const findings = [...(report?.findings ?? [])];
  const blocking = findings.filter((f) => f.severity === 'block').length;
  const section = h('section', { class: 'findings card', 'aria-label': title,
    dataset: { testid: 'findings', verdict: blocking ? 'blocked' : 'passed' } });
  section.append(h('h2', {}, title),
    h('p', { class: blocking ? 'error' : '' }, summarize(findings, blocking, analysisOnly)));
  if (!findings.length) return section;

  const ids = new Map(findings.map((f) => [f, uid('finding')]));
  section.append(h('ul', { class: 'finding-list' }, findings.map((f) => h('li', {},
    h('a', { href: `#${ids.get(f)}`, onclick: (e) => {
      e.preventDefault(); // the router owns the hash
      const target = document.getElementById(ids.get(f));
      target?.scrollIntoView({ block: 'center' });
      target?.focus({ preventScroll: true });
    } }, `Line ${f.line}:${f.column}`),
    ' ', h('span', { class: `severity severity-${f.severity}` }, SEVERITY_TEXT[f.severity] ?? f.severity),
    ' ', h('code', {}, f.rule), ' ', f.message))));

  const byLine = new Map();
  for (const f of findings) {
    if (!byLine.has(f.line)) byLine.set(f.line, []);
    byLine.get(f.line).push(f);
  }
  const tbody = h('tbody');
  const lines = source === null ? null : source.split(/\r\n|\n|\r/);
  const rows = [];
  const push = (lineNo, text) => {
    const here = byLine.get(lineNo) ?? [];
    rows.push(codeRow(lineNo, text, here[0]));
    for (const f of here) rows.push(noteRow(findingNote(f, ids.get(f))));
  };
  if (lines && lines.length <= FULL_LISTING_MAX_LINES) {
    lines.forEach((text, i) => push(i + 1, text));
  } else if (lines) {
    // A long file: only the neighbourhood of each finding.
    const shown = new Set();
    for (const line of byLine.keys()) {
      for (let n = Math.max(1, line - CONTEXT); n <= Math.min(lines.length, line + CONTEXT); n += 1) shown.add(n);
    }
    let last = 0;
    for (const n of [...shown].sort((a, b) => a - b)) {
      if (n > last + 1) rows.push(h('tr', { class: 'gap' }, h('td', { colspan: 2 }, '⋯')));
      push(n, lines[n - 1]);
      last = n;
    }
  } else {
    // No source at hand (the server page): the analyzer keeps each finding's line.
    for (const [line, here] of [...byLine.entries()].sort((a, b) => a[0] - b[0])) push(line, here[0].source_line ?? '');
  }
  tbody.append(...rows);
  section.append(h('div', { class: 'source-wrap' },
    h('table', { class: 'source', 'aria-label': 'Source with findings' },
      h('thead', { class: 'visually-hidden' }, h('tr', {}, h('th', { scope: 'col' }, 'Line'), h('th', { scope: 'col' }, 'Code'))),
      tbody)));
  return section;
}
