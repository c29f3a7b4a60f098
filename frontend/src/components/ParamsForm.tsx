import React from 'react';
import { css } from '@emotion/css';
import type { GrafanaTheme2, SelectableValue } from '@grafana/data';
import { InlineField, Input, Select, useStyles2 } from '@grafana/ui';

import type { ParamInfo } from '../types';

export interface ParamsFormProps {
  params: ParamInfo[];
  values: Record<string, string>;
  errors: Record<string, string>;
  /** Called on every edit (keystroke or selection). */
  onChange: (name: string, value: string) => void;
  /** Called when an edit is complete (input blurred, option picked). */
  onCommit?: () => void;
  /** Dashboard variables offered in option lists (`$name`); empty where they do not apply (alerting). */
  variableNames?: string[];
  /** Prefix of input ids, so that several forms can live on one page. */
  idPrefix: string;
  labelWidth?: number;
}

function paramTooltip(p: ParamInfo): string | undefined {
  const parts: string[] = [];
  if (p.description) {
    parts.push(p.description);
  }
  if (p.pattern) {
    parts.push(`Pattern: ${p.pattern}`);
  }
  if (p.options?.length) {
    parts.push(`One of: ${p.options.join(', ')}`);
  }
  return parts.length ? parts.join('\n') : undefined;
}

function hint(p: ParamInfo): string {
  const parts: string[] = [];
  if (p.required) {
    parts.push('required');
  }
  if (p.default != null && p.default !== '') {
    parts.push(`default: ${p.default}`);
  }
  if (p.pattern) {
    parts.push(`pattern: ${p.pattern}`);
  }
  return parts.join(' · ');
}

/** One input per declared param: a select for `options`, else a text input; errors inline. */
export function ParamsForm({
  params,
  values,
  errors,
  onChange,
  onCommit,
  variableNames = [],
  idPrefix,
  labelWidth = 20,
}: ParamsFormProps) {
  const styles = useStyles2(getStyles);
  if (params.length === 0) {
    return <div className={styles.muted}>This rule has no params.</div>;
  }
  return (
    <div className={styles.form} data-testid="restbridge-params">
      {params.map((p) => {
        const id = `${idPrefix}-param-${p.name}`;
        const value = values[p.name] ?? '';
        const error = errors[p.name];
        const label = `${p.title || p.name}${p.required ? ' *' : ''}`;
        const placeholder = p.default != null && p.default !== '' ? `default: ${p.default}` : p.required ? 'required' : '';
        let input: React.ReactElement;
        if (p.options && p.options.length > 0) {
          const opts: Array<SelectableValue<string>> = p.options.map((o) => ({
            label: o,
            value: o,
            description: o === p.default ? 'default' : undefined,
          }));
          for (const v of variableNames) {
            opts.push({ label: `$${v}`, value: `$${v}`, description: 'dashboard variable' });
          }
          if (value && !opts.some((o) => o.value === value)) {
            opts.push({ label: value, value });
          }
          input = (
            <Select<string>
              inputId={id}
              aria-label={`param ${p.name}`}
              options={opts}
              value={value || null}
              placeholder={placeholder || 'choose'}
              isClearable
              allowCustomValue={variableNames.length > 0}
              width={32}
              invalid={!!error}
              onChange={(v: SelectableValue<string> | null) => {
                onChange(p.name, v?.value ?? '');
                onCommit?.();
              }}
            />
          );
        } else {
          input = (
            <Input
              id={id}
              aria-label={`param ${p.name}`}
              value={value}
              placeholder={placeholder}
              width={32}
              invalid={!!error}
              onChange={(e: React.FormEvent<HTMLInputElement>) => onChange(p.name, e.currentTarget.value)}
              onBlur={() => onCommit?.()}
            />
          );
        }
        return (
          <div className={styles.row} key={p.name} data-testid={`param-row-${p.name}`}>
            <InlineField
              label={label}
              labelWidth={labelWidth}
              tooltip={paramTooltip(p)}
              invalid={!!error}
              error={error}
              htmlFor={id}
            >
              <div className={styles.control}>
                <div className={styles.input}>{input}</div>
                <span className={styles.hint}>{hint(p)}</span>
              </div>
            </InlineField>
          </div>
        );
      })}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  form: css({ display: 'flex', flexDirection: 'column', gap: theme.spacing(0.5), marginTop: theme.spacing(1) }),
  row: css({ display: 'flex', alignItems: 'flex-start', gap: theme.spacing(1), flexWrap: 'wrap' }),
  control: css({ display: 'flex', alignItems: 'center', gap: theme.spacing(1.5) }),
  input: css({ flex: 'none' }),
  hint: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize, minWidth: 0, overflowWrap: 'anywhere' }),
  muted: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize, margin: theme.spacing(1, 0) }),
});
