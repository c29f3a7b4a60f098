import React, { useState } from 'react';
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { CoreApp, dateTime } from '@grafana/data';

import { QueryEditor } from './QueryEditor';
import { VariableQueryEditor } from './VariableQueryEditor';
import { makeDataSource, PREVIEW_OK } from '../test/fixtures';
import type { RestBridgeQuery } from '../types';
import type { DataSource } from '../datasource';

type Extra = { app?: CoreApp; datasource?: DataSource; Editor?: typeof QueryEditor };

/** Renders the editor as Grafana does: the emitted query is fed back as the next `query` prop. */
function setup(initial: RestBridgeQuery, extra: Extra = {}) {
  const datasource = extra.datasource ?? makeDataSource({});
  const emitted: RestBridgeQuery[] = [];
  const onRunQuery = vi.fn();
  const Editor = extra.Editor ?? QueryEditor;
  function Host() {
    const [query, setQuery] = useState(initial);
    return (
      <Editor
        datasource={datasource}
        query={query}
        onChange={(q) => {
          emitted.push(q);
          setQuery(q);
        }}
        onRunQuery={onRunQuery}
        app={extra.app ?? CoreApp.PanelEditor}
        range={{ from: dateTime(1000), to: dateTime(2000), raw: { from: 'now-1h', to: 'now' } }}
        previewDebounceMs={5}
      />
    );
  }
  const user = userEvent.setup();
  render(<Host />);
  return { user, emitted, onRunQuery, datasource, last: () => emitted[emitted.length - 1] };
}

async function pickOption(user: ReturnType<typeof userEvent.setup>, label: string, option: string) {
  await user.click(screen.getByLabelText(label));
  await user.click(await screen.findByText(option));
}

describe('QueryEditor', () => {
  it('offers the rules, emits the picked rule with the defaults of required params, and runs it', async () => {
    const { user, last, onRunQuery } = setup({ refId: 'A' });
    await pickOption(user, 'rule', 'Hourly temperature');
    expect(last()).toEqual({ refId: 'A', rule: 'hourly_temperature', params: { city: 'Berlin' } });
    expect(onRunQuery).toHaveBeenCalled();
    expect(screen.getByTestId('rule-description')).toHaveTextContent('Open-Meteo hourly forecast for one place');
    // Params: labels, defaults as placeholders, hints.
    expect(screen.getByLabelText('param lat')).toHaveAttribute('placeholder', 'default: 52.52');
    expect(screen.getByTestId('param-row-lat')).toHaveTextContent('pattern: ^-?[0-9]+(\\.[0-9]+)?$');
    expect(screen.getByTestId('param-row-city')).toHaveTextContent('required · default: Berlin');
  });

  it('emits typed params, shows pattern errors inline, and runs the query on blur', async () => {
    const { user, last, onRunQuery } = setup({ refId: 'A', rule: 'hourly_temperature', params: { city: 'Berlin' } });
    const lat = await screen.findByLabelText('param lat');
    await user.type(lat, '48.1x');
    expect(last().params).toEqual({ city: 'Berlin', lat: '48.1x' });
    expect(screen.getByTestId('param-row-lat')).toHaveTextContent('does not match the pattern');
    await user.type(lat, '{backspace}');
    expect(screen.getByTestId('param-row-lat')).not.toHaveTextContent('does not match');
    onRunQuery.mockClear();
    await user.tab();
    expect(onRunQuery).toHaveBeenCalled();
    // Clearing a value drops the key, so the default applies.
    await user.clear(lat);
    expect(last().params).toEqual({ city: 'Berlin' });
  });

  it('uses a select for options and says when a required param is empty', async () => {
    const { user, last } = setup({ refId: 'A', rule: 'hourly_temperature', params: {} });
    await screen.findByTestId('param-row-city');
    expect(screen.getByTestId('param-row-city')).toHaveTextContent('required: set a value');
    await pickOption(user, 'param city', 'Paris');
    expect(last().params).toEqual({ city: 'Paris' });
    expect(screen.getByTestId('param-row-city')).not.toHaveTextContent('required: set a value');
  });

  it('shows the rendered request and the first rows from preview', async () => {
    const preview = vi.fn().mockResolvedValue(PREVIEW_OK);
    const datasource = makeDataSource({ preview });
    setup({ refId: 'A', rule: 'hourly_temperature', params: { city: 'Berlin', lat: '48.1' } }, { datasource });
    const req = await screen.findByTestId('preview-request');
    expect(req).toHaveTextContent('GET https://api.example.com/v1/forecast?city=Berlin&lat=48.1&lon=13.41');
    expect(req).toHaveTextContent('Authorization: ***');
    const frame = screen.getByTestId('preview-frame-0');
    expect(frame).toHaveTextContent('timeseries-multi');
    expect(frame).toHaveTextContent('48 rows (first 2 shown)');
    expect(frame).toHaveTextContent('temperature{city="Berlin"}');
    expect(within(frame).getByText('1.25')).toBeInTheDocument();
    expect(preview).toHaveBeenCalledWith({ rule: 'hourly_temperature', params: { city: 'Berlin', lat: '48.1' }, from: 1000, to: 2000 });
  });

  it('shows the error a query would fail with, and does not preview invalid params', async () => {
    const preview = vi.fn().mockResolvedValue({
      request: { method: 'GET', url: 'https://api.example.com/v1/forecast', headers: [], body: null },
      frames: [],
      error: { status: 502, errorSource: 'downstream', message: 'upstream answered 500: {"reason":"down"}' },
    });
    const { user } = setup({ refId: 'A', rule: 'hourly_temperature', params: { city: 'Berlin' } }, { datasource: makeDataSource({ preview }) });
    expect(await screen.findByTestId('preview-error')).toHaveTextContent('upstream answered 500: {"reason":"down"}');
    expect(screen.getByText(/Query fails \(status 502, downstream\)/)).toBeInTheDocument();
    preview.mockClear();
    await user.type(screen.getByLabelText('param lat'), 'abc');
    expect(await screen.findByText('Fix the params above to preview the request.')).toBeInTheDocument();
    await new Promise((r) => setTimeout(r, 30));
    expect(preview).not.toHaveBeenCalled();
  });

  it('says when the query names a rule the datasource does not have', async () => {
    setup({ refId: 'A', rule: 'gone', params: {} });
    expect(await screen.findByText("Rule 'gone' is not defined in this datasource")).toBeInTheDocument();
    expect(screen.getByText('Known rules: hourly_temperature, status')).toBeInTheDocument();
  });

  it('shows why the rules cannot be loaded', async () => {
    const datasource = makeDataSource({ rules: () => Promise.reject({ status: 400, data: { error: "datasource settings are invalid: rule 'x': bad" } }) });
    setup({ refId: 'A' }, { datasource });
    expect(await screen.findByText("datasource settings are invalid: rule 'x': bad")).toBeInTheDocument();
  });

  it('offers to remove params the rule does not declare', async () => {
    const { user, last } = setup({ refId: 'A', rule: 'status', params: { old: '1' } });
    expect(await screen.findByText("rule 'status' has no param 'old' (declared: none)")).toBeInTheDocument();
    await user.click(screen.getByText("Remove 'old' from this query"));
    expect(last().params).toEqual({});
  });

  it('warns in alert rules that dashboard variables are sent as written', async () => {
    setup({ refId: 'A', rule: 'hourly_temperature', params: { city: 'Berlin', lat: '$lat' } }, { app: CoreApp.UnifiedAlerting });
    expect(await screen.findByText('Dashboard variables do not apply in alert rules')).toBeInTheDocument();
    expect(screen.getByTestId('param-row-lat')).toHaveTextContent('does not match the pattern');
  });

  it('serves as the variable editor, also for legacy string queries', async () => {
    const { user, last } = setup('status' as unknown as RestBridgeQuery, { Editor: VariableQueryEditor });
    expect(await screen.findByText(/__text/)).toBeInTheDocument();
    await waitFor(() => expect(screen.getByText('Service status')).toBeInTheDocument());
    await pickOption(user, 'rule', 'Hourly temperature');
    expect(last()).toEqual({ refId: 'variable', rule: 'hourly_temperature', params: { city: 'Berlin' } });
  });
});
