import React, { useState } from 'react';
import { css } from '@emotion/css';
import type { GrafanaTheme2 } from '@grafana/data';
import { Alert, Button, Field, IconButton, Input, RadioButtonGroup, SecretInput, TagsInput, TextArea, useStyles2 } from '@grafana/ui';
import { parse as parseYaml } from 'yaml';

import type { AuthSettings, AuthType } from '../types';
import { parseNumber, resetSecret, setJsonData, setSecret, type Settings } from './settingsUtil';

type Choice = AuthType | 'none';

const CHOICES: Array<{ label: string; value: Choice; description: string }> = [
  { label: 'None', value: 'none', description: 'Only what the HTTP section above sets (basic auth, headers, OAuth forwarding)' },
  { label: 'Bearer token', value: 'bearer', description: 'Authorization: Bearer <token>' },
  { label: 'API key', value: 'apiKey', description: 'A key in a header or a query parameter' },
  { label: 'OAuth2 client credentials', value: 'oauth2', description: 'Token from a token URL, refreshed before it expires' },
  { label: 'Login endpoint', value: 'login', description: 'Call a login endpoint, reuse its token or cookie' },
];

interface Props {
  options: Settings;
  onOptionsChange: (o: Settings) => void;
}

function Secret({ options, onOptionsChange, secretKey, label, description, placeholder }: Props & { secretKey: string; label: string; description?: string; placeholder?: string }) {
  return (
    <Field label={label} description={description}>
      <SecretInput
        id={`restbridge-secret-${secretKey}`}
        aria-label={label}
        isConfigured={!!options.secureJsonFields?.[secretKey]}
        value={options.secureJsonData?.[secretKey] ?? ''}
        placeholder={placeholder ?? ''}
        width={48}
        onReset={() => onOptionsChange(resetSecret(options, secretKey))}
        onChange={(e: React.FormEvent<HTMLInputElement>) => onOptionsChange(setSecret(options, secretKey, e.currentTarget.value))}
      />
    </Field>
  );
}

function LoginBody({ value, onChange }: { value: unknown; onChange: (v: unknown) => void }) {
  const [text, setText] = useState(() => (value === undefined ? '' : JSON.stringify(value, null, 2)));
  const [error, setError] = useState<string>();
  return (
    <Field
      label="Body"
      description="JSON (or YAML) sent to the login endpoint. Put passwords into a secret below and write ${__secure.NAME} here."
      invalid={!!error}
      error={error}
    >
      <TextArea
        id="restbridge-login-body"
        aria-label="login body"
        rows={4}
        value={text}
        placeholder={'{"name": "grafana", "password": "${__secure.loginPassword}"}'}
        onChange={(e: React.FormEvent<HTMLTextAreaElement>) => {
          const t = e.currentTarget.value;
          setText(t);
          if (t.trim() === '') {
            setError(undefined);
            onChange(undefined);
            return;
          }
          try {
            onChange(parseYaml(t));
            setError(undefined);
          } catch (err) {
            setError(err instanceof Error ? err.message.split('\n')[0] : String(err));
          }
        }}
      />
    </Field>
  );
}

function EndpointParams({ value, onChange }: { value: Record<string, string>; onChange: (v: Record<string, string>) => void }) {
  const styles = useStyles2(getStyles);
  const entries = Object.entries(value);
  const [newKey, setNewKey] = useState('');
  return (
    <Field label="Endpoint params" description="Extra form fields of the token request (e.g. audience)">
      <div>
        {entries.map(([k, v]) => (
          <div key={k} className={styles.kv}>
            <Input value={k} disabled width={20} aria-label={`endpoint param ${k} name`} />
            <Input
              value={v}
              width={28}
              aria-label={`endpoint param ${k} value`}
              onChange={(e: React.FormEvent<HTMLInputElement>) => onChange({ ...value, [k]: e.currentTarget.value })}
            />
            <IconButton
              name="trash-alt"
              aria-label={`remove endpoint param ${k}`}
              onClick={() => {
                const next = { ...value };
                delete next[k];
                onChange(next);
              }}
            />
          </div>
        ))}
        <div className={styles.kv}>
          <Input value={newKey} width={20} placeholder="name" aria-label="new endpoint param name" onChange={(e: React.FormEvent<HTMLInputElement>) => setNewKey(e.currentTarget.value)} />
          <Button
            variant="secondary"
            size="sm"
            icon="plus"
            disabled={!newKey.trim() || newKey.trim() in value}
            onClick={() => {
              onChange({ ...value, [newKey.trim()]: '' });
              setNewKey('');
            }}
          >
            Add param
          </Button>
        </div>
      </div>
    </Field>
  );
}

/** `jsonData.auth` and its secrets (bearerToken, apiKey, clientSecret). */
export function AuthEditor({ options, onOptionsChange }: Props) {
  const auth: AuthSettings = options.jsonData.auth ?? {};
  const choice: Choice = auth.type ?? 'none';
  const known = CHOICES.some((c) => c.value === choice);
  const setAuth = (patch: Partial<AuthSettings>) => onOptionsChange(setJsonData(options, { auth: { ...auth, ...patch } }));
  const text = (key: keyof AuthSettings) => (auth[key] === undefined || auth[key] === null ? '' : String(auth[key]));
  const textInput = (key: keyof AuthSettings, label: string, placeholder: string, description?: string) => (
    <Field label={label} description={description}>
      <Input
        id={`restbridge-auth-${key}`}
        aria-label={label}
        width={48}
        value={text(key)}
        placeholder={placeholder}
        onChange={(e: React.FormEvent<HTMLInputElement>) => setAuth({ [key]: e.currentTarget.value || undefined })}
      />
    </Field>
  );
  const secretProps = { options, onOptionsChange };

  return (
    <div data-testid="restbridge-auth">
      <Field label="API authentication" description={CHOICES.find((c) => c.value === choice)?.description}>
        <RadioButtonGroup<Choice>
          options={CHOICES.map(({ label, value }) => ({ label, value }))}
          value={choice}
          onChange={(v) => {
            if (v === 'none') {
              onOptionsChange(setJsonData(options, { auth: undefined }));
            } else if (v === 'apiKey') {
              onOptionsChange(setJsonData(options, { auth: { type: v, in: 'header', name: 'X-Api-Key' } }));
            } else if (v === 'login') {
              onOptionsChange(setJsonData(options, { auth: { type: v, method: 'POST', header: 'Authorization' } }));
            } else {
              onOptionsChange(setJsonData(options, { auth: { type: v } }));
            }
          }}
        />
      </Field>
      {!known && (
        <Alert severity="warning" title={`Unknown auth type '${String(choice)}'`}>
          RestBridge knows bearer, apiKey, oauth2 and login. Pick one above, or None.
        </Alert>
      )}
      {choice === 'bearer' && <Secret {...secretProps} secretKey="bearerToken" label="Bearer token" />}
      {choice === 'apiKey' && (
        <>
          <Field label="Send the key in">
            <RadioButtonGroup<'header' | 'query'>
              options={[
                { label: 'Header', value: 'header' },
                { label: 'Query parameter', value: 'query' },
              ]}
              value={auth.in ?? 'header'}
              onChange={(v) => setAuth({ in: v })}
            />
          </Field>
          {textInput('name', auth.in === 'query' ? 'Parameter name' : 'Header name', 'X-Api-Key')}
          <Secret {...secretProps} secretKey="apiKey" label="API key" />
        </>
      )}
      {choice === 'oauth2' && (
        <>
          {textInput('tokenUrl', 'Token URL', 'https://auth.example.com/oauth/token')}
          {textInput('clientId', 'Client ID', 'client id')}
          <Secret {...secretProps} secretKey="clientSecret" label="Client secret" />
          <Field label="Scopes">
            <TagsInput tags={auth.scopes ?? []} onChange={(scopes) => setAuth({ scopes: scopes.length ? scopes : undefined })} placeholder="Add a scope and press Enter" width={48} />
          </Field>
          <EndpointParams value={auth.endpointParams ?? {}} onChange={(v) => setAuth({ endpointParams: Object.keys(v).length ? v : undefined })} />
        </>
      )}
      {choice === 'login' && (
        <>
          {textInput('url', 'Login URL', '/v3/auth/authenticate', 'Relative to the base URL')}
          <Field label="Method">
            <RadioButtonGroup<string>
              options={[
                { label: 'POST', value: 'POST' },
                { label: 'GET', value: 'GET' },
              ]}
              value={auth.method ?? 'POST'}
              onChange={(v) => setAuth({ method: v })}
            />
          </Field>
          <LoginBody value={auth.body} onChange={(body) => setAuth({ body })} />
          <Field label="Take the credential from">
            <RadioButtonGroup<'token' | 'cookie'>
              options={[
                { label: 'JSON path in the response', value: 'token' },
                { label: 'A Set-Cookie cookie', value: 'cookie' },
              ]}
              value={auth.cookie !== undefined ? 'cookie' : 'token'}
              onChange={(v) => (v === 'cookie' ? setAuth({ cookie: auth.cookie ?? '', tokenPath: undefined }) : setAuth({ cookie: undefined, tokenPath: auth.tokenPath ?? '$.token' }))}
            />
          </Field>
          {auth.cookie !== undefined ? textInput('cookie', 'Cookie name', 'SESSIONID') : textInput('tokenPath', 'Token path', '$.token', 'JSONPath of the token in the login response')}
          {auth.cookie === undefined && (
            <>
              {textInput('header', 'Header', 'Authorization', 'Where the token goes on every rule request')}
              {textInput('prefix', 'Prefix', 'Bearer ', 'Written before the token, e.g. "Bearer "')}
            </>
          )}
          <Field label="Reuse for (seconds)" description="0: reuse until a 401, then log in again once">
            <Input
              id="restbridge-auth-ttlSeconds"
              aria-label="login ttl seconds"
              type="number"
              width={16}
              value={auth.ttlSeconds ?? ''}
              placeholder="0"
              onChange={(e: React.FormEvent<HTMLInputElement>) => setAuth({ ttlSeconds: parseNumber(e.currentTarget.value) })}
            />
          </Field>
        </>
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  kv: css({ display: 'flex', gap: theme.spacing(1), alignItems: 'center', marginBottom: theme.spacing(0.5) }),
});
