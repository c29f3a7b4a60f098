import { lastValueFrom } from 'rxjs';
import { getBackendSrv } from '@grafana/runtime';

import type {
  ParamInfo,
  PreviewBody,
  PreviewFrame,
  PreviewResponse,
  Problem,
  RuleInfo,
  ValidateResponse,
} from '../types';

/** The backend resources (src/resources.rs): `GET rules`, `POST validate`, `POST preview`. */
export interface ResourceClient {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
}

/**
 * A client for a datasource that is not instantiated (the config editor has only its settings):
 * Grafana serves the resources at `/api/datasources/uid/<uid>/resources/<path>`.
 */
export function resourceClientForUid(uid: string): ResourceClient {
  const url = (path: string) => `/api/datasources/uid/${encodeURIComponent(uid)}/resources/${path}`;
  return {
    async get<T>(path: string) {
      const rsp = await lastValueFrom(
        getBackendSrv().fetch<T>({ url: url(path), method: 'GET', showErrorAlert: false, showSuccessAlert: false })
      );
      return rsp.data;
    },
    async post<T>(path: string, body: unknown) {
      const rsp = await lastValueFrom(
        getBackendSrv().fetch<T>({
          url: url(path),
          method: 'POST',
          data: body,
          showErrorAlert: false,
          showSuccessAlert: false,
        })
      );
      return rsp.data;
    },
  };
}

/** A readable message from whatever a failed resource call threw (FetchError, Error, string). */
export function errorMessage(err: unknown): string {
  if (typeof err === 'string') {
    return err;
  }
  if (err && typeof err === 'object') {
    const e = err as { data?: unknown; message?: unknown; status?: unknown; statusText?: unknown };
    if (e.data && typeof e.data === 'object') {
      const d = e.data as { error?: unknown; message?: unknown };
      if (typeof d.error === 'string' && d.error) {
        return d.error;
      }
      if (typeof d.message === 'string' && d.message) {
        return d.message;
      }
    }
    if (typeof e.message === 'string' && e.message) {
      return e.message;
    }
    if (typeof e.status === 'number') {
      return `HTTP ${e.status}${typeof e.statusText === 'string' && e.statusText ? ` ${e.statusText}` : ''}`;
    }
  }
  return 'unknown error';
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : v == null ? null : String(v));

function normalizeParam(p: unknown): ParamInfo | null {
  if (!p || typeof p !== 'object') {
    return null;
  }
  const o = p as Record<string, unknown>;
  if (typeof o.name !== 'string' || !o.name) {
    return null;
  }
  return {
    name: o.name,
    title: str(o.title),
    description: str(o.description),
    default: str(o.default),
    options: Array.isArray(o.options) ? o.options.map((x) => String(x)) : null,
    pattern: str(o.pattern),
    required: o.required === true,
  };
}

/** Validates the `GET rules` answer; unknown or malformed entries are dropped, not fatal. */
export function normalizeRules(rsp: unknown): RuleInfo[] {
  const list = rsp && typeof rsp === 'object' ? (rsp as { rules?: unknown }).rules : undefined;
  if (!Array.isArray(list)) {
    throw new Error('the backend answered GET rules without a "rules" list');
  }
  const out: RuleInfo[] = [];
  for (const r of list) {
    if (!r || typeof r !== 'object') {
      continue;
    }
    const o = r as Record<string, unknown>;
    if (typeof o.id !== 'string' || !o.id) {
      continue;
    }
    out.push({
      id: o.id,
      title: str(o.title),
      description: str(o.description),
      format: str(o.format),
      params: Array.isArray(o.params) ? o.params.map(normalizeParam).filter((x): x is ParamInfo => x !== null) : [],
    });
  }
  return out;
}

export function normalizeValidate(rsp: unknown): ValidateResponse {
  const o = (rsp && typeof rsp === 'object' ? rsp : {}) as Record<string, unknown>;
  const problems: Problem[] = Array.isArray(o.problems)
    ? o.problems
        .filter((p): p is Record<string, unknown> => !!p && typeof p === 'object')
        .map((p) => ({
          rule: typeof p.rule === 'string' ? p.rule : null,
          path: typeof p.path === 'string' ? p.path : null,
          message: typeof p.message === 'string' ? p.message : JSON.stringify(p),
        }))
    : [];
  return { ok: o.ok === true && problems.length === 0, problems };
}

export function normalizePreview(rsp: unknown): PreviewResponse {
  const o = (rsp && typeof rsp === 'object' ? rsp : {}) as Record<string, unknown>;
  const request = o.request && typeof o.request === 'object' ? (o.request as PreviewResponse['request']) : null;
  const frames = Array.isArray(o.frames)
    ? (o.frames as unknown[])
        .filter((f): f is Record<string, unknown> => !!f && typeof f === 'object')
        .map(
          (f): PreviewFrame => ({
            name: str(f.name),
            meta: f.meta && typeof f.meta === 'object' ? (f.meta as PreviewFrame['meta']) : undefined,
            fields: Array.isArray(f.fields) ? (f.fields as PreviewFrame['fields']) : [],
            rows: Array.isArray(f.rows) ? (f.rows as unknown[][]) : [],
            totalRows: typeof f.totalRows === 'number' ? f.totalRows : Array.isArray(f.rows) ? f.rows.length : 0,
          })
        )
    : [];
  const error =
    o.error && typeof o.error === 'object'
      ? {
          status: typeof (o.error as Record<string, unknown>).status === 'number' ? ((o.error as Record<string, unknown>).status as number) : undefined,
          errorSource: str((o.error as Record<string, unknown>).errorSource) ?? undefined,
          message: str((o.error as Record<string, unknown>).message) ?? 'unknown error',
        }
      : null;
  return { request: request ? { ...request, headers: Array.isArray(request.headers) ? request.headers : [] } : null, frames, error };
}

export async function fetchRules(client: ResourceClient): Promise<RuleInfo[]> {
  return normalizeRules(await client.get<unknown>('rules'));
}

export async function validateSettings(client: ResourceClient, body: unknown): Promise<ValidateResponse> {
  return normalizeValidate(await client.post<unknown>('validate', body));
}

export async function fetchPreview(client: ResourceClient, body: PreviewBody): Promise<PreviewResponse> {
  return normalizePreview(await client.post<unknown>('preview', body));
}
