import React, { useState } from 'react';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { of } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { setBackendSrv, type BackendSrv } from '@grafana/runtime';

import { ConfigEditor } from './ConfigEditor';
import type { ResourceClient } from '../lib/api';
import { settings } from '../test/fixtures';
import type { Problem } from '../types';
import type { Settings } from './settingsUtil';

// Monaco does not run in jsdom: the code editor is a textarea with the same props.
vi.mock('@grafana/ui', async (importOriginal) => {
  const ui = await importOriginal<typeof import('@grafana/ui')>();
  function FakeCodeEditor(props: { value: string; language: string; onChange?: (v: string) => void; onBlur?: (v: string) => void }) {
    return (
      <textarea
        aria-label="rules code"
        data-language={props.language}
        value={props.value}
        onChange={(e) => props.onChange?.(e.currentTarget.value)}
        onBlur={(e) => props.onBlur?.(e.currentTarget.value)}
      />
    );
  }
  return { ...ui, CodeEditor: FakeCodeEditor };
});

type ValidateFn = (body: { url?: string; jsonData: Settings['jsonData']; secureJsonFields: Record<string, boolean> }) => Problem[] | Promise<Problem[]>;

function setup(initial: Settings, validate: ValidateFn = () => []) {
  const emitted: Settings[] = [];
  const posts: Array<{ path: string; body: unknown }> = [];
  const client: ResourceClient = {
    get: async () => {
      throw new Error('not used');
    },
    post: async <T,>(path: string, body: unknown) => {
      posts.push({ path, body });
      const problems = await validate(body as Parameters<ValidateFn>[0]);
      return { ok: problems.length === 0, problems } as T;
    },
  };
  function Host() {
    const [options, setOptions] = useState(initial);
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(o) => {
          emitted.push(o);
          setOptions(o);
        }}
        client={client}
        validateDebounceMs={5}
      />
    );
  }
  const user = userEvent.setup();
  render(<Host />);
  return { user, emitted, posts, last: () => emitted[emitted.length - 1] };
}

const code = () => screen.getByLabelText('rules code') as HTMLTextAreaElement;
const setCode = (text: string) => fireEvent.change(code(), { target: { value: text } });

const GOOD = `- id: temps
  title: Temperatures
  request:
    url: /v1/forecast?lat=\${lat}
  params:
    - name: lat
      default: "52.5"
  response:
    fields:
      - name: t
        path: $.t
        type: number
`;

describe('ConfigEditor', () => {
  it("renders Grafana's HTTP settings and the saved rules as YAML", () => {
    setup(settings({ rules: [{ id: 'a', request: { url: '/x' } }] }));
    expect(screen.getByText('HTTP')).toBeInTheDocument();
    expect(screen.getByPlaceholderText('https://api.example.com')).toHaveValue('https://api.example.com');
    expect(code().value).toBe('- id: a\n  request:\n    url: /x\n');
    expect(code()).toHaveAttribute('data-language', 'yaml');
  });

  it('emits typed YAML as jsonData.rules and validates it', async () => {
    const { emitted, posts, last } = setup(settings({ timeout: 10 }));
    setCode(GOOD);
    expect(last().jsonData.rules).toEqual([
      {
        id: 'temps',
        title: 'Temperatures',
        request: { url: '/v1/forecast?lat=${lat}' },
        params: [{ name: 'lat', default: '52.5' }],
        response: { fields: [{ name: 't', path: '$.t', type: 'number' }] },
      },
    ]);
    expect(last().jsonData.timeout).toBe(10);
    expect(emitted).toHaveLength(1);
    await waitFor(() => expect(screen.getByTestId('rules-status')).toHaveTextContent('Valid: 1 rule'));
    const body = posts[posts.length - 1];
    expect(body.path).toBe('validate');
    expect(body.body).toEqual({ url: 'https://api.example.com', jsonData: last().jsonData, secureJsonFields: {} });
    expect(within(screen.getByTestId('rule-temps')).getByText('Temperatures')).toBeInTheDocument();
  });

  it('shows parse errors with their line and keeps the last valid rules', async () => {
    const { emitted } = setup(settings({ rules: [{ id: 'a' }] }));
    setCode('- id: a\n  title: [oops\n');
    const err = await screen.findByTestId('rules-parse-error');
    expect(err).toHaveTextContent(/Line \d+, column \d+: YAML: /);
    expect(err).toHaveTextContent('saving keeps the last valid rules (1)');
    expect(emitted).toHaveLength(0);
    expect(screen.getByTestId('rules-status')).toHaveTextContent('Not saved: the text does not parse');
  });

  it('shows each validation problem next to its rule, with the line of the key', async () => {
    const validate: ValidateFn = ({ jsonData }) =>
      (jsonData.rules ?? []).length === 2
        ? [
            { rule: 'b', path: 'request', message: "at 'request': unknown field `methd`, expected one of `method`, `url`" },
            { rule: null, path: 'auth', message: "'auth' needs secure bearerToken" },
          ]
        : [];
    setup(settings({}), validate);
    setCode('- id: a\n  request: {url: /a}\n- id: b\n  request:\n    methd: GET\n');
    const problem = await within(await screen.findByTestId('rule-b')).findByTestId('rule-problem');
    expect(problem).toHaveTextContent('request unknown field `methd`, expected one of');
    expect(problem).toHaveTextContent('line 5');
    expect(within(screen.getByTestId('rule-a')).queryByTestId('rule-problem')).toBeNull();
    expect(screen.getByTestId('rules-status')).toHaveTextContent('2 problems');
    expect(screen.getByText("'auth' needs secure bearerToken")).toBeInTheDocument();
  });

  it('says when live validation is unavailable', async () => {
    setup(settings({}), () => Promise.reject({ status: 404, data: { error: "no resource 'validate'" } }));
    setCode('- id: a\n');
    await waitFor(() => expect(screen.getByTestId('rules-status')).toHaveTextContent("Live validation unavailable: no resource 'validate'"));
  });

  it('converts between YAML and JSON, and refuses while the text does not parse', async () => {
    const { user } = setup(settings({ rules: [{ id: 'a', title: 'A' }] }));
    await user.click(screen.getByLabelText('JSON'));
    expect(JSON.parse(code().value)).toEqual([{ id: 'a', title: 'A' }]);
    expect(code()).toHaveAttribute('data-language', 'json');
    setCode('[{"id": "a",}]');
    expect(await screen.findByTestId('rules-parse-error')).toHaveTextContent('JSON:');
    await user.click(screen.getByLabelText('YAML'));
    expect(screen.getByText(/Fix the JSON error first/)).toBeInTheDocument();
    setCode('[{"id": "b"}]');
    await user.click(screen.getByLabelText('YAML'));
    expect(code().value).toBe('- id: b\n');
  });

  it('inserts an example rule into an empty editor', async () => {
    const { user, last } = setup(settings({}));
    await user.click(screen.getByText('Insert an example rule'));
    expect((last().jsonData.rules as Array<{ id: string }>)[0].id).toBe('hourly_temperature');
  });

  it('edits bearer auth with a write-only secret', async () => {
    const { user, last } = setup(settings({}));
    await user.click(screen.getByLabelText('Bearer token'));
    expect(last().jsonData.auth).toEqual({ type: 'bearer' });
    await user.type(screen.getByLabelText('Bearer token', { selector: 'input:not([type=radio])' }), 's3cret');
    expect(last().secureJsonData?.bearerToken).toBe('s3cret');
  });

  it('never shows a stored secret, only that it is configured, and resets it', async () => {
    const { user, last } = setup(settings({ auth: { type: 'apiKey', in: 'query', name: 'key' } }, { secureJsonFields: { apiKey: true } }));
    const input = screen.getByLabelText('API key', { selector: 'input:not([type=radio])' });
    expect(input).toHaveValue('configured');
    expect(input).toBeDisabled();
    expect(screen.getByLabelText('Parameter name')).toHaveValue('key');
    await user.click(screen.getByRole('button', { name: 'Reset' }));
    expect(last().secureJsonFields.apiKey).toBe(false);
    expect(last().secureJsonData?.apiKey).toBe('');
  });

  it('says when the saved auth type is unknown', () => {
    setup(settings({ auth: { type: 'digest' as never } }));
    expect(screen.getByText("Unknown auth type 'digest'")).toBeInTheDocument();
  });

  it('edits OAuth2 and login auth', async () => {
    const { user, last } = setup(settings({}));
    await user.click(screen.getByLabelText('OAuth2 client credentials'));
    fireEvent.change(screen.getByLabelText('Token URL'), { target: { value: 'https://auth/t' } });
    await user.type(screen.getByLabelText('Client ID'), 'cid');
    expect(last().jsonData.auth).toEqual({ type: 'oauth2', tokenUrl: 'https://auth/t', clientId: 'cid' });
    await user.click(screen.getByLabelText('Login endpoint'));
    fireEvent.change(screen.getByLabelText('Login URL'), { target: { value: '/login' } });
    fireEvent.change(screen.getByLabelText('login body'), { target: { value: '{"name": "g", "password": "${__secure.loginPassword}"}' } });
    expect(last().jsonData.auth).toEqual({
      type: 'login',
      method: 'POST',
      header: 'Authorization',
      url: '/login',
      body: { name: 'g', password: '${__secure.loginPassword}' },
    });
    // The login body uses a secret that is not set yet.
    const secrets = screen.getByTestId('restbridge-secrets');
    expect(within(secrets).getByText('loginPassword')).toBeInTheDocument();
    expect(within(secrets).getByText('used but not set')).toBeInTheDocument();
    await user.type(within(secrets).getByLabelText('secret loginPassword'), 'pw');
    expect(last().secureJsonData?.loginPassword).toBe('pw');
    expect(within(secrets).queryByText('used but not set')).toBeNull();
  });

  it('lets the admin add any secret and posts set secrets as secureJsonFields', async () => {
    const { user, last, posts } = setup(settings({}, { secureJsonFields: { token: true } }));
    const secrets = screen.getByTestId('restbridge-secrets');
    expect(within(secrets).getByLabelText('secret token')).toHaveValue('configured');
    await user.type(within(secrets).getByLabelText('new secret name'), 'bad name');
    expect(within(secrets).getByText('letters, digits, _ . - only')).toBeInTheDocument();
    await user.clear(within(secrets).getByLabelText('new secret name'));
    await user.type(within(secrets).getByLabelText('new secret name'), 'extra');
    await user.click(within(secrets).getByText('Add secret'));
    await user.type(within(secrets).getByLabelText('secret extra'), 'v');
    expect(last().secureJsonData).toEqual({ extra: 'v' });
    await waitFor(() =>
      expect(posts[posts.length - 1]?.body).toMatchObject({ secureJsonFields: { token: true, extra: true } })
    );
  });

  it('edits the cache defaults, hosts and limits', async () => {
    const { user, last } = setup(settings({}));
    const ttl = screen.getByLabelText('TTL (seconds)');
    expect(ttl).toHaveAttribute('placeholder', '60');
    await user.type(ttl, '300');
    expect(last().jsonData.cache).toEqual({ ttlSeconds: 300 });
    await user.click(screen.getByLabelText('Cached'));
    expect(last().jsonData.cache).toEqual({ ttlSeconds: 300, alertQueries: 'cached' });
    await user.clear(ttl);
    expect(last().jsonData.cache).toEqual({ alertQueries: 'cached' });
    await user.type(screen.getByLabelText('Max response size (bytes)'), '1048576');
    expect(last().jsonData.maxResponseBytes).toBe(1048576);
    expect(screen.getByText('1 MiB')).toBeInTheDocument();
    await user.type(screen.getByPlaceholderText('api.example.org and Enter'), 'data.example.org{enter}');
    expect(last().jsonData.allowedHosts).toEqual(['data.example.org']);
  });

  it('picks a health-check rule and fills its params', async () => {
    const { user, last } = setup(settings({ rules: [{ id: 'temps', params: [{ name: 'lat', pattern: '[0-9.]+' }] }] }));
    await user.click(screen.getByLabelText('health check rule'));
    const found = await screen.findAllByText('temps');
    await user.click(found[found.length - 1]);
    expect(last().jsonData.healthCheck).toEqual({ rule: 'temps', params: {} });
    await user.type(screen.getByLabelText('param lat'), 'x');
    expect(last().jsonData.healthCheck).toEqual({ rule: 'temps', params: { lat: 'x' } });
    expect(screen.getByText('does not match the pattern [0-9.]+')).toBeInTheDocument();
  });

  it("posts validate to the datasource's resources through Grafana's backend service", async () => {
    const fetch = vi.fn().mockReturnValue(of({ data: { ok: false, problems: [{ rule: 'a', path: 'id', message: "'id' is used by more than one rule" }] } }));
    setBackendSrv({ fetch } as unknown as BackendSrv);
    const options = settings({});
    render(<ConfigEditor options={options} onOptionsChange={() => {}} validateDebounceMs={5} />);
    await act(async () => {
      await new Promise((r) => setTimeout(r, 50));
    });
    expect(fetch).toHaveBeenCalledWith({
      url: '/api/datasources/uid/rb-uid/resources/validate',
      method: 'POST',
      data: { url: 'https://api.example.com', jsonData: {}, secureJsonFields: {} },
      showErrorAlert: false,
      showSuccessAlert: false,
    });
    await waitFor(() => expect(screen.getByTestId('rules-status')).toHaveTextContent('1 problem'));
  });
});
