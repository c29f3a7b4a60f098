import React, { useMemo, useState } from 'react';
import { css } from '@emotion/css';
import type { GrafanaTheme2 } from '@grafana/data';
import { Button, Field, Input, SecretInput, useStyles2 } from '@grafana/ui';

import { secureRefs } from '../lib/rulesText';
import { isStandardSecureKey } from '../types';
import { effectiveSecureFields, resetSecret, setSecret, type Settings } from './settingsUtil';

interface Props {
  options: Settings;
  onOptionsChange: (o: Settings) => void;
}

const KEY_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * Secrets that rules (or the login body) use as `${__secure.KEY}`: every referenced key gets an
 * input, and the admin can add any other key. Values are write-only: Grafana never sends a
 * stored secret back, the editor only knows that it is set.
 */
export function SecretsEditor({ options, onOptionsChange }: Props) {
  const styles = useStyles2(getStyles);
  const [added, setAdded] = useState<string[]>([]);
  const [newKey, setNewKey] = useState('');
  const refs = useMemo(() => secureRefs(JSON.stringify(options.jsonData ?? {})), [options.jsonData]);
  const set = effectiveSecureFields(options);
  const keys = useMemo(() => {
    const all = new Set<string>(refs);
    for (const k of Object.keys(options.secureJsonFields ?? {})) {
      if (options.secureJsonFields[k]) {
        all.add(k);
      }
    }
    for (const k of Object.keys(options.secureJsonData ?? {})) {
      all.add(k);
    }
    added.forEach((k) => all.add(k));
    return [...all].filter((k) => !isStandardSecureKey(k)).sort();
  }, [refs, options.secureJsonFields, options.secureJsonData, added]);

  const trimmed = newKey.trim();
  const newKeyError = !trimmed
    ? undefined
    : !KEY_RE.test(trimmed)
      ? 'letters, digits, _ . - only'
      : isStandardSecureKey(trimmed)
        ? 'this secret has its own field above'
        : keys.includes(trimmed)
          ? 'already listed'
          : undefined;

  return (
    <div data-testid="restbridge-secrets">
      {keys.length === 0 && <p className={styles.muted}>No rule uses a secret yet. Rules read one as {'${__secure.NAME}'}.</p>}
      {keys.map((key) => {
        const used = refs.includes(key);
        const missing = used && !set[key];
        return (
          <Field
            key={key}
            label={key}
            description={used ? `used as \${__secure.${key}}` : 'not used by any rule or the login body'}
            invalid={missing}
            error={missing ? 'used but not set' : undefined}
          >
            <div className={styles.row}>
              <SecretInput
                id={`restbridge-secret-${key}`}
                aria-label={`secret ${key}`}
                isConfigured={!!options.secureJsonFields?.[key]}
                value={options.secureJsonData?.[key] ?? ''}
                placeholder="value"
                width={48}
                onReset={() => onOptionsChange(resetSecret(options, key))}
                onChange={(e: React.FormEvent<HTMLInputElement>) => onOptionsChange(setSecret(options, key, e.currentTarget.value))}
              />
              {!used && !options.secureJsonFields?.[key] && (
                <Button
                  variant="secondary"
                  size="sm"
                  icon="trash-alt"
                  aria-label={`remove secret ${key}`}
                  onClick={() => {
                    setAdded(added.filter((k) => k !== key));
                    const secureJsonData = { ...(options.secureJsonData ?? {}) };
                    delete secureJsonData[key];
                    onOptionsChange({ ...options, secureJsonData });
                  }}
                />
              )}
            </div>
          </Field>
        );
      })}
      <Field label="Add a secret" invalid={!!newKeyError} error={newKeyError}>
        <div className={styles.row}>
          <Input
            id="restbridge-new-secret"
            aria-label="new secret name"
            width={32}
            placeholder="e.g. loginPassword"
            value={newKey}
            onChange={(e: React.FormEvent<HTMLInputElement>) => setNewKey(e.currentTarget.value)}
          />
          <Button
            variant="secondary"
            icon="plus"
            disabled={!trimmed || !!newKeyError}
            onClick={() => {
              setAdded([...added, trimmed]);
              setNewKey('');
            }}
          >
            Add secret
          </Button>
        </div>
      </Field>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  row: css({ display: 'flex', gap: theme.spacing(1), alignItems: 'center' }),
  muted: css({ color: theme.colors.text.secondary }),
});
