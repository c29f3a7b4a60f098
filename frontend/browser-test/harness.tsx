/**
 * The browser harness: the real ConfigEditor and QueryEditor with the real React, @grafana/ui
 * (Monaco included) and @grafana/runtime, talking to a fake backend (fakeBackend.ts) through
 * Grafana's backend service and DataSourceWithBackend resource calls. What the editors emit is
 * kept in window.__restbridge for the Playwright test.
 */
import React, { useState } from 'react';
import { createRoot } from 'react-dom/client';
import { of } from 'rxjs';
import { CoreApp, dateTime, type DataSourceSettings } from '@grafana/data';
import { setBackendSrv, setTemplateSrv, type BackendSrv, type BackendSrvRequest, type TemplateSrv } from '@grafana/runtime';

import { ConfigEditor } from '../src/components/ConfigEditor';
import { QueryEditor } from '../src/components/QueryEditor';
import { DataSource } from '../src/datasource';
import { instanceSettings, settings } from '../src/test/fixtures';
import type { RestBridgeJsonData, RestBridgeQuery, RestBridgeSecureJsonData } from '../src/types';
import * as fake from './fakeBackend';

type Settings = DataSourceSettings<RestBridgeJsonData, RestBridgeSecureJsonData>;

declare global {
  interface Window {
    __restbridge: { config: Settings[]; query: RestBridgeQuery[]; runs: number; resources: string[] };
  }
}

(window as unknown as { MonacoEnvironment: { getWorker(id: string, label: string): Worker } }).MonacoEnvironment = {
  getWorker(_id: string, label: string) {
    if (label === 'json') {
      return new Worker(new URL('monaco-editor/esm/vs/language/json/json.worker.js', import.meta.url), { type: 'module' });
    }
    return new Worker(new URL('monaco-editor/esm/vs/editor/editor.worker.js', import.meta.url), { type: 'module' });
  },
};

const record: Window['__restbridge'] = { config: [], query: [], runs: 0, resources: [] };
window.__restbridge = record;

// The settings the config editor holds now; the fake backend answers from them, as Grafana's
// backend answers from the saved settings.
let current: Settings = settings({ timeout: 30 });

setTemplateSrv({
  getVariables: () => [],
  replace: (s?: string) => s ?? '',
  containsTemplate: () => false,
  updateTimeRange: () => {},
} as unknown as TemplateSrv);

setBackendSrv({
  fetch(req: BackendSrvRequest) {
    record.resources.push(`${req.method} ${req.url}`);
    if (req.method === 'POST' && req.url.endsWith('/resources/validate')) {
      return of({ data: fake.validate(req.data), status: 200, ok: true });
    }
    throw new Error(`unexpected request ${req.method} ${req.url}`);
  },
} as unknown as BackendSrv);

const datasource = new DataSource(instanceSettings());
datasource.getResource = (async (path: string) => {
  record.resources.push(`GET ${path}`);
  if (path === 'rules') {
    return fake.rules(current.jsonData);
  }
  throw { status: 404, data: { error: `no resource '${path}'` } };
}) as DataSource['getResource'];
datasource.postResource = (async (path: string, body: unknown) => {
  record.resources.push(`POST ${path}`);
  if (path === 'preview') {
    return fake.preview(current.url, current.jsonData, body as { rule: string; params?: Record<string, string> });
  }
  throw { status: 404, data: { error: `no resource '${path}'` } };
}) as DataSource['postResource'];

function ConfigHost() {
  const [options, setOptions] = useState(current);
  return (
    <ConfigEditor
      options={options}
      onOptionsChange={(o) => {
        current = o;
        record.config.push(o);
        setOptions(o);
      }}
    />
  );
}

function QueryHost() {
  const [query, setQuery] = useState<RestBridgeQuery>({ refId: 'A' });
  return (
    <QueryEditor
      datasource={datasource}
      query={query}
      onChange={(q) => {
        record.query.push(q);
        setQuery(q);
      }}
      onRunQuery={() => {
        record.runs++;
      }}
      app={CoreApp.PanelEditor}
      range={{ from: dateTime(1704067200000), to: dateTime(1704153600000), raw: { from: 'now-1d', to: 'now' } }}
    />
  );
}

createRoot(document.getElementById('config')!).render(<ConfigHost />);
createRoot(document.getElementById('query')!).render(<QueryHost />);
