import React, { useMemo, useState } from 'react';
import { css } from '@emotion/css';
import type { DataSourcePluginOptionsEditorProps, GrafanaTheme2 } from '@grafana/data';
import { DataSourceHttpSettings, useStyles2 } from '@grafana/ui';

import { errorMessage, resourceClientForUid, validateSettings, type ResourceClient } from '../lib/api';
import type { RestBridgeJsonData, RestBridgeSecureJsonData } from '../types';
import { AuthEditor } from './AuthEditor';
import { CacheEditor, LimitsEditor } from './CacheAndLimitsEditor';
import { HealthCheckEditor } from './HealthCheckEditor';
import { RulesEditor, type ValidationState } from './RulesEditor';
import { SecretsEditor } from './SecretsEditor';
import { effectiveSecureFields, type Settings } from './settingsUtil';
import { useDebouncedEffect } from './useDebouncedEffect';

export const VALIDATE_DEBOUNCE_MS = 700;

export type ConfigEditorProps = DataSourcePluginOptionsEditorProps<RestBridgeJsonData, RestBridgeSecureJsonData> & {
  /** For tests and embedding: where `validate` is posted (default: this datasource's resources). */
  client?: ResourceClient;
  validateDebounceMs?: number;
};

/** The body `POST validate` gets: what the editor has now, before saving. */
export function validateBody(options: Settings) {
  return { url: options.url, jsonData: options.jsonData, secureJsonFields: effectiveSecureFields(options) };
}

function useValidation(options: Settings, client: ResourceClient | undefined, delayMs: number): ValidationState {
  const [state, setState] = useState<ValidationState>({ kind: 'idle' });
  const body = validateBody(options);
  const key = JSON.stringify(body);
  useDebouncedEffect(
    async (isCurrent) => {
      if (!client) {
        return;
      }
      setState({ kind: 'pending' });
      try {
        const rsp = await validateSettings(client, body);
        if (isCurrent()) {
          setState({ kind: 'done', problems: rsp.problems });
        }
      } catch (e) {
        if (isCurrent()) {
          setState({ kind: 'unavailable', message: errorMessage(e) });
        }
      }
    },
    key,
    delayMs,
    !!client
  );
  return state;
}

function Section({ title, description, children, testId }: { title: string; description?: React.ReactNode; children: React.ReactNode; testId?: string }) {
  const styles = useStyles2(getStyles);
  return (
    <section className={styles.section} data-testid={testId}>
      <h3 className={styles.h3}>{title}</h3>
      {description && <p className={styles.description}>{description}</p>}
      {children}
    </section>
  );
}

/** The datasource settings page. */
export function ConfigEditor(props: ConfigEditorProps) {
  const { options, onOptionsChange, validateDebounceMs = VALIDATE_DEBOUNCE_MS } = props;
  const client = useMemo(() => props.client ?? (options.uid ? resourceClientForUid(options.uid) : undefined), [props.client, options.uid]);
  const validation = useValidation(options, client, validateDebounceMs);
  const common = { options, onOptionsChange };

  return (
    <div data-testid="restbridge-config-editor">
      <DataSourceHttpSettings
        defaultUrl="https://api.example.com"
        dataSourceConfig={options}
        onChange={onOptionsChange}
        showAccessOptions={false}
        showForwardOAuthIdentityOption
      />
      <Section title="API authentication" description="Credentials the API expects on every rule request, in addition to the HTTP settings above.">
        <AuthEditor {...common} />
      </Section>
      <Section
        title="Rules"
        testId="restbridge-rules-section"
        description={
          <>
            Each rule is one named request with its params and how to turn the JSON answer into fields. Panels, alerts and
            variables pick a rule and set only its params. Edit as YAML or JSON; problems are checked as you type.
          </>
        }
      >
        <RulesEditor {...common} validation={validation} />
      </Section>
      <Section title="Secrets for rules" description="Values rules read as ${__secure.NAME}. Stored encrypted; never shown again after saving.">
        <SecretsEditor {...common} />
      </Section>
      <Section title="Cache" description="Defaults for every rule; a rule's own cache settings override them.">
        <CacheEditor {...common} />
      </Section>
      <Section title="Hosts and limits">
        <LimitsEditor {...common} />
      </Section>
      <Section title="Health check">
        <HealthCheckEditor {...common} />
      </Section>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  section: css({ marginTop: theme.spacing(4) }),
  h3: css({ marginBottom: theme.spacing(1) }),
  description: css({ color: theme.colors.text.secondary, marginBottom: theme.spacing(2) }),
});
