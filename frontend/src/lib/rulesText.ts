import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, stringify, type Node } from 'yaml';

import type { ParamInfo, Problem } from '../types';

export type RulesFormat = 'yaml' | 'json';

/** A position in the rules text, 1-based like Monaco's. */
export interface TextRange {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export interface TextError {
  message: string;
  range?: TextRange;
}

export interface ParsedRules {
  ok: true;
  rules: unknown[];
  /** The text was `rules: [...]` (a pasted provisioning snippet) rather than the bare list. */
  wrapped: boolean;
  doc: Document;
  lineCounter: LineCounter;
}

export type ParseResult = ParsedRules | { ok: false; error: TextError };

/** The editor text for a rules list. */
export function rulesToText(rules: unknown[] | undefined, format: RulesFormat): string {
  if (!rules || rules.length === 0) {
    return format === 'json' ? '[]\n' : '';
  }
  if (format === 'json') {
    return JSON.stringify(rules, null, 2) + '\n';
  }
  return stringify(rules, { lineWidth: 0, aliasDuplicateObjects: false });
}

function offsetRange(lc: LineCounter, start: number, end: number): TextRange {
  const a = lc.linePos(start);
  const b = lc.linePos(Math.max(end, start + 1));
  return { line: a.line, column: a.col, endLine: b.line, endColumn: b.col };
}

function jsonErrorOffset(message: string, text: string): number | undefined {
  const pos = /position (\d+)/.exec(message);
  if (pos) {
    return Number(pos[1]);
  }
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) {
    const lines = text.split('\n');
    let off = 0;
    for (let i = 0; i < Number(lc[1]) - 1 && i < lines.length; i++) {
      off += lines[i].length + 1;
    }
    return off + Number(lc[2]) - 1;
  }
  if (/end of (JSON|data) input/i.test(message)) {
    return text.length;
  }
  return undefined;
}

/** Parses the editor text: YAML (JSON is YAML too) or strict JSON. Never throws. */
export function parseRulesText(text: string, format: RulesFormat): ParseResult {
  const lineCounter = new LineCounter();
  if (format === 'json' && text.trim() !== '') {
    try {
      JSON.parse(text);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const off = jsonErrorOffset(message, text);
      const lc = new LineCounter();
      parseDocument(text, { lineCounter: lc });
      return {
        ok: false,
        error: { message: `JSON: ${message}`, range: off === undefined ? undefined : offsetRange(lc, off, off + 1) },
      };
    }
  }
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const first = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    return {
      ok: false,
      error: {
        message: `${format === 'json' ? 'JSON' : 'YAML'}: ${first}`,
        range: offsetRange(lineCounter, err.pos[0], err.pos[1]),
      },
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    return { ok: false, error: { message: e instanceof Error ? e.message : String(e) } };
  }
  if (value === null || value === undefined) {
    return { ok: true, rules: [], wrapped: false, doc, lineCounter };
  }
  if (Array.isArray(value)) {
    return { ok: true, rules: value, wrapped: false, doc, lineCounter };
  }
  if (typeof value === 'object' && Array.isArray((value as { rules?: unknown }).rules)) {
    return { ok: true, rules: (value as { rules: unknown[] }).rules, wrapped: true, doc, lineCounter };
  }
  const contents = doc.contents as Node | null;
  return {
    ok: false,
    error: {
      message: 'expected a list of rules (each item starting with "- id: …"), or "rules:" followed by that list',
      range: contents?.range ? offsetRange(lineCounter, contents.range[0], contents.range[1]) : undefined,
    },
  };
}

/** Splits a backend key path (`response.fields[0].type`) into segments. */
export function splitPath(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const part of path.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1] !== '') {
      out.push(m[1]);
    }
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) {
      out.push(Number(idx[1]));
    }
  }
  return out;
}

function rulesSeq(parsed: ParsedRules): Node | null {
  const root = parsed.doc.contents as Node | null;
  if (parsed.wrapped && isMap(root)) {
    return (root.get('rules', true) as Node | undefined) ?? null;
  }
  return root;
}

export interface RuleOutline {
  index: number;
  /** The id as the backend names it: the `id`, or `#index` when there is none. */
  id: string;
  title?: string;
  line: number;
}

/** Each rule of the text with the line it starts on. */
export function outlineRules(parsed: ParsedRules): RuleOutline[] {
  const seq = rulesSeq(parsed);
  if (!isSeq(seq)) {
    return [];
  }
  return seq.items.map((item, index) => {
    const node = item as Node;
    const raw = parsed.rules[index] as Record<string, unknown> | null;
    const id = raw && typeof raw === 'object' && typeof raw.id === 'string' ? raw.id : `#${index}`;
    const title = raw && typeof raw === 'object' && typeof raw.title === 'string' ? raw.title : undefined;
    const line = node?.range ? parsed.lineCounter.linePos(node.range[0]).line : 1;
    return { index, id, title, line };
  });
}

/** Indexes of the rules a problem is about (several when an id is duplicated). */
export function problemRuleIndexes(rules: unknown[], problem: Problem): number[] {
  if (problem.rule === null) {
    return [];
  }
  const hash = /^#(\d+)$/.exec(problem.rule);
  const out: number[] = [];
  rules.forEach((r, i) => {
    const id = r && typeof r === 'object' ? (r as { id?: unknown }).id : undefined;
    if (id === problem.rule || (hash && typeof id !== 'string' && Number(hash[1]) === i)) {
      out.push(i);
    }
  });
  return out;
}

/**
 * Where a problem of rule `index` is in the text: the key its `path` names (or the deepest part
 * of the path that exists), else the rule itself.
 */
export function locateProblem(parsed: ParsedRules, index: number, problem: Problem): TextRange | undefined {
  const seq = rulesSeq(parsed);
  if (!isSeq(seq)) {
    return undefined;
  }
  let node = seq.items[index] as Node | undefined;
  if (!node?.range) {
    return undefined;
  }
  let range: [number, number] = [node.range[0], node.range[1]];
  const segments = problem.path ? splitPath(problem.path) : [];
  // serde's "unknown field `methd`" points at the parent; the field itself is more helpful.
  const unknown = /unknown field [`'"]([^`'"]+)[`'"]/.exec(problem.message);
  if (unknown) {
    segments.push(unknown[1]);
  }
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) {
        break;
      }
      const key = pair.key as Node;
      if (key.range) {
        range = [key.range[0], key.range[1]];
      }
      node = pair.value as Node | undefined;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) {
        break;
      }
      node = item;
      if (item.range) {
        range = [item.range[0], item.range[1]];
      }
    } else {
      break;
    }
    if (!node) {
      break;
    }
  }
  return offsetRange(parsed.lineCounter, range[0], range[1]);
}

/** The secure keys the text uses as `${__secure.KEY}`, sorted and unique. */
export function secureRefs(text: string): string[] {
  const keys = new Set<string>();
  for (const m of text.matchAll(/\$\{__secure\.([A-Za-z0-9_.-]+)\}/g)) {
    keys.add(m[1]);
  }
  return [...keys].sort();
}

/** The rule ids of a parsed list (for the health-check picker). */
export function ruleIds(rules: unknown[]): string[] {
  return rules
    .map((r) => (r && typeof r === 'object' ? (r as { id?: unknown }).id : undefined))
    .filter((id): id is string => typeof id === 'string' && id !== '');
}

/** The params a raw (not yet saved) rule declares, in the shape `GET rules` uses. */
export function paramDefsFromRaw(rule: unknown): ParamInfo[] {
  const params = rule && typeof rule === 'object' ? (rule as { params?: unknown }).params : undefined;
  if (!Array.isArray(params)) {
    return [];
  }
  const s = (v: unknown) => (v === undefined || v === null ? null : String(v));
  return params
    .filter((p): p is Record<string, unknown> => !!p && typeof p === 'object' && typeof p.name === 'string')
    .map((p) => ({
      name: p.name as string,
      title: s(p.title),
      description: s(p.description),
      default: s(p.default),
      options: Array.isArray(p.options) ? p.options.map(String) : null,
      pattern: s(p.pattern),
      required: p.required === true,
    }));
}

/** A rule to start from. */
export const EXAMPLE_RULE = {
  id: 'hourly_temperature',
  title: 'Hourly temperature',
  description: 'Open-Meteo hourly forecast for one place',
  request: {
    url: '/v1/forecast',
    query: {
      latitude: '${lat}',
      longitude: '${lon}',
      hourly: 'temperature_2m',
      start_date: '${__from:date:YYYY-MM-DD}',
      end_date: '${__to:date:YYYY-MM-DD}',
    },
  },
  params: [
    { name: 'lat', default: '52.52', pattern: '^-?[0-9]+(\\.[0-9]+)?$' },
    { name: 'lon', default: '13.41', pattern: '^-?[0-9]+(\\.[0-9]+)?$' },
  ],
  response: {
    fields: [
      { name: 'time', path: '$.hourly.time[*]', type: 'time', format: '%Y-%m-%dT%H:%M' },
      { name: 'temperature', path: '$.hourly.temperature_2m[*]', type: 'number', unit: 'celsius' },
    ],
  },
};
