import React from 'react';
import { css } from '@emotion/css';
import type { GrafanaTheme2 } from '@grafana/data';
import { Field, Input, RadioButtonGroup, TagsInput, useStyles2 } from '@grafana/ui';

import type { CacheSettings } from '../types';
import { parseNumber, setJsonData, type Settings } from './settingsUtil';

interface Props {
  options: Settings;
  onOptionsChange: (o: Settings) => void;
}

export const CACHE_DEFAULTS = { ttlSeconds: 60, maxBytes: 268435456, staleIfErrorSeconds: 0, alignSeconds: 0 };
export const MAX_RESPONSE_BYTES_DEFAULT = 67108864;

function bytes(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) {
    return `${n / (1 << 30)} GiB`;
  }
  if (n >= 1 << 20) {
    return `${Math.round((n / (1 << 20)) * 10) / 10} MiB`;
  }
  if (n >= 1 << 10) {
    return `${Math.round((n / (1 << 10)) * 10) / 10} KiB`;
  }
  return `${n} B`;
}

function NumberField({
  id,
  label,
  description,
  value,
  placeholder,
  onChange,
  suffix,
}: {
  id: string;
  label: string;
  description: string;
  value: number | undefined;
  placeholder: number;
  onChange: (v: number | undefined) => void;
  suffix?: (v: number) => string;
}) {
  const shown = value ?? placeholder;
  const invalid = value !== undefined && (value < 0 || !Number.isFinite(value));
  return (
    <Field label={label} description={description} invalid={invalid} error={invalid ? 'must be 0 or more' : undefined}>
      <Input
        id={id}
        aria-label={label}
        type="number"
        min={0}
        width={24}
        value={value ?? ''}
        placeholder={String(placeholder)}
        suffix={suffix ? suffix(shown) : undefined}
        onChange={(e: React.FormEvent<HTMLInputElement>) => onChange(parseNumber(e.currentTarget.value))}
      />
    </Field>
  );
}

/** `jsonData.cache` defaults for every rule (a rule's own `cache` overrides them). */
export function CacheEditor({ options, onOptionsChange }: Props) {
  const styles = useStyles2(getStyles);
  const cache: CacheSettings = options.jsonData.cache ?? {};
  const setCache = (patch: Partial<CacheSettings>) => {
    const next: CacheSettings = { ...cache, ...patch };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) {
        delete next[k as keyof CacheSettings];
      }
    }
    onOptionsChange(setJsonData(options, { cache: Object.keys(next).length ? next : undefined }));
  };
  return (
    <div className={styles.grid} data-testid="restbridge-cache">
      <NumberField
        id="restbridge-cache-ttl"
        label="TTL (seconds)"
        description="How long an answer is fresh. 0: never cached."
        value={cache.ttlSeconds}
        placeholder={CACHE_DEFAULTS.ttlSeconds}
        onChange={(v) => setCache({ ttlSeconds: v })}
      />
      <NumberField
        id="restbridge-cache-maxbytes"
        label="Cache size (bytes)"
        description="Bound of the whole answer cache of this datasource."
        value={cache.maxBytes}
        placeholder={CACHE_DEFAULTS.maxBytes}
        suffix={bytes}
        onChange={(v) => setCache({ maxBytes: v })}
      />
      <NumberField
        id="restbridge-cache-stale"
        label="Stale if error (seconds)"
        description="When the API fails, serve the last answer if it expired at most this long ago."
        value={cache.staleIfErrorSeconds}
        placeholder={CACHE_DEFAULTS.staleIfErrorSeconds}
        onChange={(v) => setCache({ staleIfErrorSeconds: v })}
      />
      <NumberField
        id="restbridge-cache-align"
        label="Align time range (seconds)"
        description="Round from/to to multiples of this, so that now-6h hits the cache."
        value={cache.alignSeconds}
        placeholder={CACHE_DEFAULTS.alignSeconds}
        onChange={(v) => setCache({ alignSeconds: v })}
      />
      <Field label="Alert queries" description="fresh: alert evaluations always call the API; cached: they use the cache like dashboards.">
        <RadioButtonGroup<'fresh' | 'cached'>
          options={[
            { label: 'Fresh', value: 'fresh' },
            { label: 'Cached', value: 'cached' },
          ]}
          value={cache.alertQueries ?? 'fresh'}
          onChange={(v) => setCache({ alertQueries: v === 'fresh' ? undefined : v })}
        />
      </Field>
    </div>
  );
}

/** Hosts, size limit and the base URL override. */
export function LimitsEditor({ options, onOptionsChange }: Props) {
  const styles = useStyles2(getStyles);
  const jd = options.jsonData;
  return (
    <div className={styles.grid} data-testid="restbridge-limits">
      <Field
        label="Allowed hosts"
        description="Extra hosts (host or host:port) that absolute rule URLs and redirects may reach. The base URL's host is always allowed."
      >
        <TagsInput
          id="restbridge-allowed-hosts"
          tags={jd.allowedHosts ?? []}
          placeholder="api.example.org and Enter"
          width={48}
          onChange={(hosts) => onOptionsChange(setJsonData(options, { allowedHosts: hosts.length ? hosts : undefined }))}
        />
      </Field>
      <NumberField
        id="restbridge-max-response"
        label="Max response size (bytes)"
        description="A larger response body is an error; it is never read whole."
        value={jd.maxResponseBytes}
        placeholder={MAX_RESPONSE_BYTES_DEFAULT}
        suffix={bytes}
        onChange={(v) => onOptionsChange(setJsonData(options, { maxResponseBytes: v }))}
      />
      <Field label="Base URL override" description="Optional; when set, rule URLs are relative to this instead of the URL above.">
        <Input
          id="restbridge-base-url"
          aria-label="Base URL override"
          width={48}
          value={jd.baseUrl ?? ''}
          placeholder="(the URL above)"
          onChange={(e: React.FormEvent<HTMLInputElement>) => onOptionsChange(setJsonData(options, { baseUrl: e.currentTarget.value || undefined }))}
        />
      </Field>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  grid: css({ display: 'flex', flexDirection: 'column', gap: theme.spacing(0) }),
});
