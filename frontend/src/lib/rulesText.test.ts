import { describe, expect, it } from 'vitest';

import {
  locateProblem,
  outlineRules,
  paramDefsFromRaw,
  parseRulesText,
  problemRuleIndexes,
  ruleIds,
  rulesToText,
  secureRefs,
  splitPath,
  type ParsedRules,
} from './rulesText';

const YAML_TEXT = `# weather
- id: first
  title: First
  request:
    url: /v1/a
- id: second
  request:
    methd: GET
    url: /v1/b
  response:
    fields:
      - name: t
        path: $.t
        type: tyme
`;

function ok(text: string, format: 'yaml' | 'json' = 'yaml'): ParsedRules {
  const p = parseRulesText(text, format);
  if (!p.ok) {
    throw new Error(p.error.message);
  }
  return p;
}

describe('rules text', () => {
  it('parses a YAML list and outlines its rules with their lines', () => {
    const p = ok(YAML_TEXT);
    expect(p.rules).toHaveLength(2);
    expect(outlineRules(p)).toEqual([
      { index: 0, id: 'first', title: 'First', line: 2 },
      { index: 1, id: 'second', title: undefined, line: 6 },
    ]);
  });

  it('treats empty text as no rules and reads a pasted "rules:" block', () => {
    expect(ok('').rules).toEqual([]);
    const p = ok('rules:\n  - id: a\n');
    expect(p.wrapped).toBe(true);
    expect(outlineRules(p)).toEqual([{ index: 0, id: 'a', title: undefined, line: 2 }]);
  });

  it('reports YAML errors with their line', () => {
    const p = parseRulesText('- id: a\n  title: [unclosed\n- id: b\n', 'yaml');
    expect(p.ok).toBe(false);
    if (!p.ok) {
      expect(p.error.message).toMatch(/^YAML: /);
      expect(p.error.range?.line).toBeGreaterThanOrEqual(2);
    }
    const dup = parseRulesText('- id: a\n  id: b\n', 'yaml');
    expect(dup.ok).toBe(false);
  });

  it('requires a list', () => {
    const p = parseRulesText('id: a\n', 'yaml');
    expect(p.ok).toBe(false);
    if (!p.ok) {
      expect(p.error.message).toMatch(/expected a list of rules/);
    }
  });

  it('is strict in JSON mode and points at the error', () => {
    const p = parseRulesText('[\n  {"id": "a",}\n]', 'json');
    expect(p.ok).toBe(false);
    if (!p.ok) {
      expect(p.error.message).toMatch(/^JSON: /);
      expect(p.error.range?.line).toBe(2);
    }
    expect(parseRulesText('- id: a', 'json').ok).toBe(false);
    expect(ok('[{"id": "a"}]', 'json').rules).toEqual([{ id: 'a' }]);
  });

  it('converts between YAML and JSON without losing data', () => {
    const rules = ok(YAML_TEXT).rules;
    const json = rulesToText(rules, 'json');
    expect(ok(json, 'json').rules).toEqual(rules);
    expect(ok(rulesToText(rules, 'yaml')).rules).toEqual(rules);
    expect(rulesToText([], 'yaml')).toBe('');
  });

  it('splits backend key paths', () => {
    expect(splitPath('response.fields[0].type')).toEqual(['response', 'fields', 0, 'type']);
    expect(splitPath('request.query.start_date')).toEqual(['request', 'query', 'start_date']);
    expect(splitPath('params[1]')).toEqual(['params', 1]);
  });

  it('locates a problem at the key its path names', () => {
    const p = ok(YAML_TEXT);
    const typeRange = locateProblem(p, 1, { rule: 'second', path: 'response.fields[0].type', message: "at 'response.fields[0].type': unknown variant `tyme`" });
    expect(typeRange?.line).toBe(14);
    const unknown = locateProblem(p, 1, { rule: 'second', path: 'request', message: "at 'request': unknown field `methd`, expected one of `method`, `url`" });
    expect(unknown?.line).toBe(8);
    expect(unknown?.column).toBe(5);
    const missing = locateProblem(p, 0, { rule: 'first', path: 'response.fields', message: 'x' });
    expect(missing?.line).toBe(2);
    const noPath = locateProblem(p, 0, { rule: 'first', path: null, message: 'x' });
    expect(noPath?.line).toBe(2);
  });

  it('finds the rules a problem names, also by #index for rules without an id', () => {
    const rules = [{ id: 'a' }, { title: 'no id' }, { id: 'a' }];
    expect(problemRuleIndexes(rules, { rule: 'a', path: 'id', message: '' })).toEqual([0, 2]);
    expect(problemRuleIndexes(rules, { rule: '#1', path: null, message: '' })).toEqual([1]);
    expect(problemRuleIndexes(rules, { rule: null, path: 'url', message: '' })).toEqual([]);
    expect(ruleIds(rules)).toEqual(['a', 'a']);
  });

  it('lists the secrets rules use', () => {
    expect(secureRefs('a ${__secure.token} b ${__secure.pw} ${__secure.token} ${lat}')).toEqual(['pw', 'token']);
  });

  it('reads param definitions of an unsaved rule', () => {
    expect(paramDefsFromRaw({ id: 'x', params: [{ name: 'n', default: 5, options: [1, 2], required: true }, { nope: 1 }] })).toEqual([
      { name: 'n', title: null, description: null, default: '5', options: ['1', '2'], pattern: null, required: true },
    ]);
    expect(paramDefsFromRaw(undefined)).toEqual([]);
  });
});
