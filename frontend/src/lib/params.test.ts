import { describe, expect, it } from 'vitest';

import type { ParamInfo, RuleInfo } from '../types';
import { checkParam, checkParams, cleanParams, compilePattern, hasTemplateVariable, initialParams } from './params';

const lat: ParamInfo = { name: 'lat', default: '52.52', pattern: '^-?[0-9]+(\\.[0-9]+)?$' };
const city: ParamInfo = { name: 'city', options: ['Berlin', 'Paris'], required: true, default: 'Berlin' };
const dash = { variablesAllowed: true };
const alert = { variablesAllowed: false };

describe('params', () => {
  it('accepts an empty optional param (its default applies)', () => {
    expect(checkParam(lat, '', dash)).toBeUndefined();
    expect(checkParam(lat, undefined, dash)).toBeUndefined();
  });

  it('checks the pattern against the whole value', () => {
    expect(checkParam(lat, '48.1', dash)).toBeUndefined();
    expect(checkParam(lat, '48.1x', dash)).toBe('does not match the pattern ^-?[0-9]+(\\.[0-9]+)?$');
    expect(checkParam({ name: 'p', pattern: '[a-z]+' }, 'abc1', dash)).toMatch(/does not match/);
  });

  it('reads a leading Rust inline flag and skips patterns JS cannot compile', () => {
    expect(compilePattern('(?i)abc')!.test('ABC')).toBe(true);
    expect(compilePattern('(?P<x>a')).toBeNull();
    expect(checkParam({ name: 'p', pattern: '(?P<x>a' }, 'zzz', dash)).toBeUndefined();
  });

  it('checks options and required, and says that a default does not satisfy required', () => {
    expect(checkParam(city, 'Rome', alert)).toBe('must be one of "Berlin", "Paris"');
    expect(checkParam(city, '', alert)).toMatch(/required.*default "Berlin" does not count/);
    expect(checkParam({ name: 'x', required: true }, '', alert)).toBe('required');
  });

  it('leaves dashboard variables to the backend, but not in alerting', () => {
    expect(hasTemplateVariable('$city')).toBe(true);
    expect(hasTemplateVariable('${city:raw}')).toBe(true);
    expect(hasTemplateVariable('[[city]]')).toBe(true);
    expect(hasTemplateVariable('US$')).toBe(false);
    expect(checkParam(city, '$city', dash)).toBeUndefined();
    expect(checkParam(city, '$city', alert)).toMatch(/must be one of/);
  });

  it('reports params the rule does not declare', () => {
    const rule: RuleInfo = { id: 'r', params: [lat] };
    expect(checkParams(rule, { latt: '1' }, dash)).toEqual({ latt: "rule 'r' has no param 'latt' (declared: lat)" });
  });

  it('starts a rule with the defaults of its required params and drops empty values', () => {
    expect(initialParams({ id: 'r', params: [lat, city] })).toEqual({ city: 'Berlin' });
    expect(cleanParams({ a: '', b: 'x' })).toEqual({ b: 'x' });
  });
});
