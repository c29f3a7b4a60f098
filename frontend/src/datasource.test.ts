import { of } from 'rxjs';
import { describe, expect, it, vi, beforeEach } from 'vitest';
import { CoreApp, FieldType, toDataFrame } from '@grafana/data';
import { setTemplateSrv, type TemplateSrv } from '@grafana/runtime';

import { DataSource, prepareAnnotation } from './datasource';
import { instanceSettings } from './test/fixtures';

beforeEach(() => {
  setTemplateSrv({
    getVariables: () => [],
    replace: (s?: string) => (s ?? '').replace('$city', 'Berlin,Paris'),
    containsTemplate: () => false,
    updateTimeRange: () => {},
  } as unknown as TemplateSrv);
});

describe('DataSource', () => {
  it('sends only queries that pick a rule', () => {
    const ds = new DataSource(instanceSettings());
    expect(ds.filterQuery({ refId: 'A' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', rule: 'r' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', rule: 'r', hide: true })).toBe(false);
    expect(ds.getDefaultQuery(CoreApp.PanelEditor)).toEqual({ params: {} });
  });

  it('resolves dashboard variables in param values', () => {
    const ds = new DataSource(instanceSettings());
    expect(ds.applyTemplateVariables({ refId: 'A', rule: 'r', params: { city: '$city', lat: '1' } }, {})).toEqual({
      refId: 'A',
      rule: 'r',
      params: { city: 'Berlin,Paris', lat: '1' },
    });
  });

  it('describes a query in one line', () => {
    const ds = new DataSource(instanceSettings());
    expect(ds.getQueryDisplayText({ refId: 'A', rule: 'r', params: { a: '1', b: 'x' } })).toBe('r(a=1, b=x)');
    expect(ds.getQueryDisplayText({ refId: 'A' })).toBe('(no rule)');
  });

  it('fetches the rules once, again on refresh, and retries after a failure', async () => {
    const ds = new DataSource(instanceSettings());
    const get = vi
      .fn()
      .mockRejectedValueOnce({ status: 400, data: { error: 'datasource settings are invalid' } })
      .mockResolvedValue({ rules: [{ id: 'a', params: [] }] });
    ds.getResource = get;
    await expect(ds.getRules()).rejects.toBeTruthy();
    expect((await ds.getRules()).map((r) => r.id)).toEqual(['a']);
    await ds.getRules();
    expect(get).toHaveBeenCalledTimes(2);
    await ds.getRules(true);
    expect(get).toHaveBeenCalledTimes(3);
    expect(get).toHaveBeenLastCalledWith('rules', undefined, { showErrorAlert: false });
  });

  it('posts previews with variables resolved', async () => {
    const ds = new DataSource(instanceSettings());
    const post = vi.fn().mockResolvedValue({ request: null, frames: [] });
    ds.postResource = post;
    await ds.preview({ rule: 'r', params: { city: '$city' }, from: 1, to: 2 });
    expect(post).toHaveBeenCalledWith('preview', { rule: 'r', params: { city: 'Berlin,Paris' }, from: 1, to: 2 }, { showErrorAlert: false });
  });

  it('answers metricFindQuery from the rule frames', async () => {
    const ds = new DataSource(instanceSettings());
    const q = vi.fn().mockReturnValue(of({ data: [toDataFrame({ fields: [{ name: 'name', type: FieldType.string, values: ['a', 'b'] }] })] }));
    ds.query = q;
    expect(await ds.metricFindQuery({ refId: 'v', rule: 'names', params: {} })).toEqual([{ text: 'a' }, { text: 'b' }]);
    expect(q.mock.calls[0][0].targets).toEqual([{ refId: 'v', rule: 'names', params: {} }]);
    expect(await ds.metricFindQuery('')).toEqual([]);
    q.mockReturnValue(of({ data: [], errors: [{ message: 'upstream 502' }] }));
    await expect(ds.metricFindQuery('names')).rejects.toThrow('upstream 502');
  });

  it('has variable support with the query editor', () => {
    const ds = new DataSource(instanceSettings());
    expect(ds.variables).toBeDefined();
  });
});

describe('annotations', () => {
  it('keeps the rule query in target, also for annotations saved with the rule at the top level', () => {
    expect(prepareAnnotation({ name: 'deploys', enable: true, rule: 'deploys', params: { env: 'prod' } })).toEqual({
      name: 'deploys',
      enable: true,
      target: { refId: 'Anno', rule: 'deploys', params: { env: 'prod' } },
    });
    expect(prepareAnnotation({ name: 'x', target: { refId: 'Z', rule: 'r' } }).target).toEqual({ refId: 'Z', rule: 'r', params: {} });
  });

  it('runs an annotation only when it has a rule', () => {
    const ds = new DataSource(instanceSettings());
    const anno = ds.annotations.prepareAnnotation!({ name: 'a', enable: true, iconColor: 'red' });
    expect(ds.annotations.prepareQuery!(anno)).toBeUndefined();
    expect(ds.annotations.prepareQuery!({ ...anno, target: { refId: '', rule: 'deploys', params: {} } })).toEqual({
      refId: 'Anno',
      rule: 'deploys',
      params: {},
    });
    expect(ds.annotations.processEvents).toBeUndefined();
  });
});
