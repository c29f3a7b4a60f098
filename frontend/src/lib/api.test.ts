import { describe, expect, it } from 'vitest';

import { errorMessage, normalizePreview, normalizeRules, normalizeValidate } from './api';

describe('resource answers', () => {
  it('normalizes GET rules and drops malformed entries', () => {
    const rules = normalizeRules({
      rules: [
        { id: 'a', title: 'A', description: null, format: 'auto', params: [{ name: 'p', default: 5, options: ['x'], required: true }, { bad: 1 }] },
        { title: 'no id' },
        null,
      ],
    });
    expect(rules).toEqual([
      {
        id: 'a',
        title: 'A',
        description: null,
        format: 'auto',
        params: [{ name: 'p', title: null, description: null, default: '5', options: ['x'], pattern: null, required: true }],
      },
    ]);
    expect(() => normalizeRules({ error: 'x' })).toThrow(/rules/);
  });

  it('normalizes validate answers', () => {
    expect(normalizeValidate({ ok: true, problems: [] })).toEqual({ ok: true, problems: [] });
    expect(normalizeValidate({ ok: false, problems: [{ rule: 'a', path: 'id', message: 'm' }, { message: 'ds' }] })).toEqual({
      ok: false,
      problems: [
        { rule: 'a', path: 'id', message: 'm' },
        { rule: null, path: null, message: 'ds' },
      ],
    });
  });

  it('normalizes preview answers, with and without a request', () => {
    const p = normalizePreview({ request: null, frames: [], error: { status: 400, errorSource: 'downstream', message: 'bad' } });
    expect(p).toEqual({ request: null, frames: [], error: { status: 400, errorSource: 'downstream', message: 'bad' } });
    const q = normalizePreview({ request: { method: 'GET', url: 'u', headers: [['a', 'b']], body: null }, frames: [{ fields: [], rows: [[1]] }] });
    expect(q.frames[0].totalRows).toBe(1);
    expect(q.error).toBeNull();
  });

  it('extracts readable error messages', () => {
    expect(errorMessage({ status: 400, data: { error: 'datasource settings are invalid: x' } })).toBe('datasource settings are invalid: x');
    expect(errorMessage({ status: 502, data: {}, statusText: 'Bad Gateway' })).toBe('HTTP 502 Bad Gateway');
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(undefined)).toBe('unknown error');
  });
});
