import React, { useCallback, useEffect, useMemo, useState } from 'react';
import { css } from '@emotion/css';
import { CoreApp, type GrafanaTheme2, type QueryEditorProps, type SelectableValue } from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import { Alert, IconButton, InlineField, Select, useStyles2 } from '@grafana/ui';

import type { DataSource } from '../datasource';
import { errorMessage } from '../lib/api';
import { checkParams, cleanParams, hasTemplateVariable, initialParams } from '../lib/params';
import type { RestBridgeJsonData, RestBridgeQuery, RuleInfo } from '../types';
import { ParamsForm } from './ParamsForm';
import { PreviewPanel } from './PreviewPanel';

export type RestBridgeQueryEditorProps = QueryEditorProps<DataSource, RestBridgeQuery, RestBridgeJsonData> & {
  /** Hide the preview (e.g. where the editor is embedded in a narrow form). */
  hidePreview?: boolean;
  previewDebounceMs?: number;
};

type RulesState = { kind: 'loading' } | { kind: 'ready'; rules: RuleInfo[] } | { kind: 'failed'; message: string };

function isAlerting(app: CoreApp | string | undefined): boolean {
  return app === CoreApp.UnifiedAlerting || app === 'unified-alerting' || app === CoreApp.CloudAlerting;
}

function dashboardVariableNames(): string[] {
  try {
    return getTemplateSrv()
      .getVariables()
      .map((v) => v.name);
  } catch {
    return [];
  }
}

/**
 * Panel, Explore and alert-rule editor: pick a rule, fill its params, see the request.
 * Emits `{rule, params}`; empty params are left out so that their defaults apply.
 */
export function QueryEditor(props: RestBridgeQueryEditorProps) {
  const { datasource, query, onChange, onRunQuery, range, app, hidePreview, previewDebounceMs } = props;
  const styles = useStyles2(getStyles);
  const [state, setState] = useState<RulesState>({ kind: 'loading' });
  const alerting = isAlerting(app);

  const load = useCallback(
    (refresh: boolean) => {
      setState({ kind: 'loading' });
      datasource.getRules(refresh).then(
        (rules) => setState({ kind: 'ready', rules }),
        (e) => setState({ kind: 'failed', message: errorMessage(e) })
      );
    },
    [datasource]
  );
  useEffect(() => load(false), [load]);

  const rules = useMemo(() => (state.kind === 'ready' ? state.rules : []), [state]);
  const rule = rules.find((r) => r.id === query.rule);
  const params = useMemo(() => query.params ?? {}, [query.params]);
  const variableNames = useMemo(() => (alerting ? [] : dashboardVariableNames()), [alerting]);
  const errors = useMemo(
    () => (rule ? checkParams(rule, params, { variablesAllowed: !alerting }) : {}),
    [rule, params, alerting]
  );
  const templated = alerting ? Object.entries(params).filter(([, v]) => hasTemplateVariable(v)) : [];

  const ruleOptions: Array<SelectableValue<string>> = rules.map((r) => ({
    label: r.title || r.id,
    value: r.id,
    description: [r.title ? r.id : '', r.description ?? ''].filter(Boolean).join(' — ') || undefined,
  }));
  if (query.rule && !rule) {
    ruleOptions.push({ label: query.rule, value: query.rule, description: 'not defined in this datasource' });
  }

  const onRuleChange = (v: SelectableValue<string> | null) => {
    const next = rules.find((r) => r.id === v?.value);
    if (!next) {
      onChange({ ...query, rule: undefined, params: {} });
      return;
    }
    if (next.id === query.rule) {
      return;
    }
    // Keep values of same-named params; start required ones at their default.
    const kept: Record<string, string> = { ...initialParams(next) };
    for (const p of next.params) {
      if (params[p.name] !== undefined) {
        kept[p.name] = params[p.name];
      }
    }
    onChange({ ...query, rule: next.id, params: cleanParams(kept) });
    onRunQuery();
  };

  const onParamChange = (name: string, value: string) => {
    onChange({ ...query, params: cleanParams({ ...params, [name]: value }) });
  };

  const undeclared = rule ? Object.keys(params).filter((k) => !rule.params.some((p) => p.name === k)) : [];
  const blockedReason = Object.keys(errors).length > 0 ? 'Fix the params above to preview the request.' : undefined;

  return (
    <div className={styles.editor} data-testid="restbridge-query-editor">
      <div className={styles.row}>
        <InlineField label="Rule" labelWidth={20} tooltip="The rules are defined by the admin in the datasource settings" grow>
          <Select<string>
            inputId="restbridge-rule"
            aria-label="rule"
            options={ruleOptions}
            value={query.rule ?? null}
            onChange={onRuleChange}
            isLoading={state.kind === 'loading'}
            placeholder={state.kind === 'ready' && rules.length === 0 ? 'No rules configured' : 'Choose a rule'}
            noOptionsMessage="No rules: define them in the datasource settings"
            width={48}
            invalid={!!query.rule && state.kind === 'ready' && !rule}
          />
        </InlineField>
        <IconButton name="sync" tooltip="Reload rules" onClick={() => load(true)} aria-label="Reload rules" />
        {rule?.format && <span className={styles.badge}>format: {rule.format}</span>}
      </div>

      {state.kind === 'failed' && (
        <Alert severity="error" title="Could not load the rules of this datasource">
          {state.message}
        </Alert>
      )}
      {state.kind === 'ready' && query.rule && !rule && (
        <Alert severity="error" title={`Rule '${query.rule}' is not defined in this datasource`}>
          {rules.length ? `Known rules: ${rules.map((r) => r.id).join(', ')}` : 'The datasource has no rules.'}
        </Alert>
      )}

      {rule && (
        <>
          {rule.description && (
            <p className={styles.description} data-testid="rule-description">
              {rule.description}
            </p>
          )}
          <ParamsForm
            params={rule.params}
            values={params}
            errors={errors}
            onChange={onParamChange}
            onCommit={onRunQuery}
            variableNames={variableNames}
            idPrefix={`restbridge-${query.refId ?? 'A'}`}
          />
          {undeclared.map((name) => (
            <div key={name} className={styles.undeclared}>
              <Alert severity="error" title={errors[name] ?? `unknown param '${name}'`}>
                <button
                  type="button"
                  className={styles.linkButton}
                  onClick={() => {
                    const next = { ...params };
                    delete next[name];
                    onChange({ ...query, params: next });
                  }}
                >
                  Remove &apos;{name}&apos; from this query
                </button>
              </Alert>
            </div>
          ))}
          {templated.length > 0 && (
            <Alert severity="warning" title="Dashboard variables do not apply in alert rules">
              {templated.map(([k, v]) => `${k}=${v}`).join(', ')} will be sent as written.
            </Alert>
          )}
        </>
      )}

      {!hidePreview && (
        <PreviewPanel datasource={datasource} query={query} range={range} blockedReason={blockedReason} debounceMs={previewDebounceMs} />
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  editor: css({ display: 'flex', flexDirection: 'column', gap: theme.spacing(0.5) }),
  row: css({ display: 'flex', alignItems: 'center', gap: theme.spacing(1) }),
  badge: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize }),
  description: css({ color: theme.colors.text.secondary, margin: theme.spacing(0.5, 0, 0, 0), whiteSpace: 'pre-wrap' }),
  undeclared: css({ marginTop: theme.spacing(0.5) }),
  linkButton: css({ background: 'none', border: 'none', padding: 0, color: theme.colors.text.link, cursor: 'pointer' }),
});
