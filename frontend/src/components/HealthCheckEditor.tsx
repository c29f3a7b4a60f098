import React, { useMemo } from 'react';
import type { SelectableValue } from '@grafana/data';
import { Field, Select } from '@grafana/ui';

import { checkParams } from '../lib/params';
import { paramDefsFromRaw, ruleIds } from '../lib/rulesText';
import { ParamsForm } from './ParamsForm';
import { setJsonData, type Settings } from './settingsUtil';

interface Props {
  options: Settings;
  onOptionsChange: (o: Settings) => void;
}

/** `jsonData.healthCheck`: a rule that "Save & test" runs live. */
export function HealthCheckEditor({ options, onOptionsChange }: Props) {
  const rules = useMemo(() => options.jsonData.rules ?? [], [options.jsonData.rules]);
  const hc = options.jsonData.healthCheck;
  const ids = ruleIds(rules);
  const raw = rules.find((r) => r && typeof r === 'object' && (r as { id?: unknown }).id === hc?.rule);
  const params = useMemo(() => paramDefsFromRaw(raw), [raw]);
  const values = hc?.params ?? {};
  const errors = raw
    ? checkParams({ id: hc?.rule ?? '', params }, values, { variablesAllowed: false })
    : {};
  const opts: Array<SelectableValue<string>> = ids.map((id) => ({ label: id, value: id }));
  if (hc?.rule && !ids.includes(hc.rule)) {
    opts.push({ label: hc.rule, value: hc.rule, description: 'no such rule' });
  }
  return (
    <div data-testid="restbridge-healthcheck">
      <Field
        label="Rule to run on Save & test"
        description="Optional. Without it, Save & test only checks that the settings compile."
        invalid={!!hc?.rule && !ids.includes(hc.rule)}
        error={hc?.rule && !ids.includes(hc.rule) ? `no rule with id '${hc.rule}'` : undefined}
      >
        <Select<string>
          inputId="restbridge-healthcheck-rule"
          aria-label="health check rule"
          options={opts}
          value={hc?.rule ?? null}
          isClearable
          width={48}
          placeholder="(none)"
          onChange={(v: SelectableValue<string> | null) =>
            onOptionsChange(setJsonData(options, { healthCheck: v?.value ? { rule: v.value, params: {} } : undefined }))
          }
        />
      </Field>
      {raw !== undefined && params.length > 0 && (
        <ParamsForm
          params={params}
          values={values}
          errors={errors}
          idPrefix="restbridge-healthcheck"
          onChange={(name, value) => {
            const next = { ...values, [name]: value };
            if (value === '') {
              delete next[name];
            }
            onOptionsChange(setJsonData(options, { healthCheck: { rule: hc?.rule, params: next } }));
          }}
        />
      )}
    </div>
  );
}
