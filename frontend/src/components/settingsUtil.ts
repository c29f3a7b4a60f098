import type { DataSourceSettings } from '@grafana/data';

import type { RestBridgeJsonData, RestBridgeSecureJsonData } from '../types';

export type Settings = DataSourceSettings<RestBridgeJsonData, RestBridgeSecureJsonData>;

export function setJsonData(options: Settings, patch: Partial<RestBridgeJsonData>): Settings {
  const jsonData: RestBridgeJsonData = { ...options.jsonData, ...patch };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) {
      delete jsonData[k];
    }
  }
  return { ...options, jsonData };
}

export function setSecret(options: Settings, key: string, value: string): Settings {
  return { ...options, secureJsonData: { ...(options.secureJsonData ?? {}), [key]: value } };
}

/** Grafana's way to delete a stored secret: mark it unset and send an empty value. */
export function resetSecret(options: Settings, key: string): Settings {
  return {
    ...options,
    secureJsonFields: { ...options.secureJsonFields, [key]: false },
    secureJsonData: { ...(options.secureJsonData ?? {}), [key]: '' },
  };
}

/** Which secrets will be set after saving: the stored ones plus those typed in now. */
export function effectiveSecureFields(options: Settings): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(options.secureJsonFields ?? {})) {
    out[k] = !!v;
  }
  for (const [k, v] of Object.entries(options.secureJsonData ?? {})) {
    if (typeof v === 'string' && v !== '') {
      out[k] = true;
    }
  }
  return out;
}

/** A number input's value: '' → undefined (the default applies). */
export function parseNumber(text: string): number | undefined {
  if (text.trim() === '') {
    return undefined;
  }
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}
