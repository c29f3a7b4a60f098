import { of, lastValueFrom } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { type DataFrame, type DataQueryRequest, FieldType, toDataFrame } from '@grafana/data';

import { framesToMetricFindValues, metricFindValuesToFrame, RestBridgeVariableSupport, toVariableQuery } from './variables';
import type { DataSource } from './datasource';
import type { RestBridgeQuery } from './types';

const frame = (fields: Array<{ name: string; type: FieldType; values: unknown[] }>): DataFrame => toDataFrame({ fields });

describe('variable values', () => {
  it('uses __text and __value fields', () => {
    const f = frame([
      { name: 'id', type: FieldType.number, values: [1, 2] },
      { name: '__text', type: FieldType.string, values: ['Berlin', 'Paris'] },
      { name: '__value', type: FieldType.string, values: ['ber', 'par'] },
    ]);
    expect(framesToMetricFindValues([f])).toEqual([
      { text: 'Berlin', value: 'ber' },
      { text: 'Paris', value: 'par' },
    ]);
  });

  it('falls back to the first string field, skips nulls and repeats', () => {
    const f = frame([
      { name: 'time', type: FieldType.time, values: [1, 2, 3, 4] },
      { name: 'count', type: FieldType.number, values: [1, 2, 3, 4] },
      { name: 'city', type: FieldType.string, values: ['Berlin', null, 'Paris', 'Berlin'] },
      { name: 'country', type: FieldType.string, values: ['DE', 'DE', 'FR', 'DE'] },
    ]);
    expect(framesToMetricFindValues([f])).toEqual([{ text: 'Berlin' }, { text: 'Paris' }]);
  });

  it('uses a number field when there is no string field, and reads every frame', () => {
    const a = frame([{ name: 'id', type: FieldType.number, values: [7, 8] }]);
    const b = frame([{ name: 'name', type: FieldType.string, values: ['x'] }]);
    expect(framesToMetricFindValues([a, b])).toEqual([{ text: '7' }, { text: '8' }, { text: 'x' }]);
  });

  it('turns values into a text/value frame', () => {
    const f = metricFindValuesToFrame([{ text: 'Berlin', value: 'ber' }, { text: 'Paris' }]);
    expect(f.fields.map((x) => [x.name, x.values])).toEqual([
      ['text', ['Berlin', 'Paris']],
      ['value', ['ber', 'Paris']],
    ]);
  });

  it('reads legacy string variable queries as a rule id', () => {
    expect(toVariableQuery('cities')).toEqual({ refId: 'variable', rule: 'cities', params: {} });
    expect(toVariableQuery({ refId: '', rule: 'a' })).toEqual({ refId: 'variable', rule: 'a' });
  });

  it('runs the rule through the datasource and answers a text/value frame', async () => {
    const query = vi.fn((req: DataQueryRequest<RestBridgeQuery>) => {
      expect(req.targets).toEqual([{ refId: 'variable', rule: 'cities', params: {} }]);
      return of({ data: [frame([{ name: '__text', type: FieldType.string, values: ['Berlin'] }, { name: '__value', type: FieldType.string, values: ['ber'] }])] });
    });
    const support = new RestBridgeVariableSupport({ query } as unknown as DataSource);
    const rsp = await lastValueFrom(support.query({ targets: ['cities'] } as unknown as DataQueryRequest<RestBridgeQuery>));
    expect(rsp.data[0].fields.map((f: { values: unknown[] }) => f.values)).toEqual([['Berlin'], ['ber']]);
    expect(support.editor).toBeDefined();
  });
});
