import type { DataQuery, DataSourceJsonData } from '@grafana/schema';

/** What a panel, alert or variable query sends to the backend (config.md §3). */
export interface RestBridgeQuery extends DataQuery {
  /** Rule id, as declared in `jsonData.rules[].id`. */
  rule?: string;
  /** Values of the rule's declared params, by name. An absent param uses its default. */
  params?: Record<string, string>;
}

export type AuthType = 'bearer' | 'apiKey' | 'oauth2' | 'login';

/** `jsonData.auth`: auth kinds beyond Grafana's basic auth (config.md §1, §2.1). */
export interface AuthSettings {
  type?: AuthType;
  // apiKey
  in?: 'header' | 'query';
  name?: string;
  // oauth2
  tokenUrl?: string;
  clientId?: string;
  scopes?: string[];
  endpointParams?: Record<string, string>;
  // login
  url?: string;
  method?: string;
  body?: unknown;
  tokenPath?: string;
  cookie?: string;
  header?: string;
  prefix?: string;
  ttlSeconds?: number;
}

export interface CacheSettings {
  ttlSeconds?: number;
  maxBytes?: number;
  staleIfErrorSeconds?: number;
  alignSeconds?: number;
  alertQueries?: 'fresh' | 'cached';
}

export interface HealthCheckSettings {
  rule?: string;
  params?: Record<string, string>;
}

/** `jsonData` of a RestBridge datasource. Grafana's own HTTP keys are edited by DataSourceHttpSettings. */
export interface RestBridgeJsonData extends DataSourceJsonData {
  rules?: unknown[];
  cache?: CacheSettings;
  timeout?: number;
  baseUrl?: string;
  allowedHosts?: string[];
  maxResponseBytes?: number;
  auth?: AuthSettings;
  healthCheck?: HealthCheckSettings;
  tlsSkipVerify?: boolean;
  tlsAuth?: boolean;
  tlsAuthWithCACert?: boolean;
  serverName?: string;
  oauthPassThru?: boolean;
  keepCookies?: string[];
  [key: string]: unknown;
}

/** Secure keys; any other key is a secret a rule may use as `${__secure.KEY}`. */
export interface RestBridgeSecureJsonData {
  basicAuthPassword?: string;
  bearerToken?: string;
  apiKey?: string;
  clientSecret?: string;
  tlsCACert?: string;
  tlsClientCert?: string;
  tlsClientKey?: string;
  [key: string]: string | undefined;
}

/** The secure keys that have their own input somewhere in the config editor. */
export const STANDARD_SECURE_KEYS = [
  'basicAuthPassword',
  'bearerToken',
  'apiKey',
  'clientSecret',
  'tlsCACert',
  'tlsClientCert',
  'tlsClientKey',
];

export function isStandardSecureKey(key: string): boolean {
  return STANDARD_SECURE_KEYS.includes(key) || /^httpHeaderValue\d+$/.test(key);
}

/** One param of a rule, as `GET rules` describes it. */
export interface ParamInfo {
  name: string;
  title?: string | null;
  description?: string | null;
  default?: string | null;
  options?: string[] | null;
  pattern?: string | null;
  required?: boolean;
}

/** One rule, as `GET rules` describes it. */
export interface RuleInfo {
  id: string;
  title?: string | null;
  description?: string | null;
  format?: string | null;
  params: ParamInfo[];
}

/** One problem reported by `POST validate`. */
export interface Problem {
  rule: string | null;
  path: string | null;
  message: string;
}

export interface ValidateResponse {
  ok: boolean;
  problems: Problem[];
}

export interface PreviewRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body?: string | null;
}

export interface PreviewField {
  name: string;
  type: string;
  labels?: Record<string, string> | null;
}

export interface PreviewFrame {
  name?: string | null;
  meta?: { type?: string; notices?: Array<{ severity?: string; text: string }> } & Record<string, unknown>;
  fields: PreviewField[];
  rows: unknown[][];
  totalRows: number;
}

export interface PreviewError {
  status?: number;
  errorSource?: string;
  message: string;
}

export interface PreviewResponse {
  request: PreviewRequest | null;
  frames: PreviewFrame[];
  error?: PreviewError | null;
}

export interface PreviewBody {
  rule: string;
  params: Record<string, string>;
  from?: number;
  to?: number;
  maxRows?: number;
}
