import React from 'react';
import { css } from '@emotion/css';
import type { GrafanaTheme2 } from '@grafana/data';
import { useStyles2 } from '@grafana/ui';

import { toVariableQuery } from '../variables';
import { QueryEditor, type RestBridgeQueryEditorProps } from './QueryEditor';

/** The variable editor: the query editor, plus how values are taken from the rule's fields. */
export function VariableQueryEditor(props: RestBridgeQueryEditorProps) {
  const styles = useStyles2(getStyles);
  const query = toVariableQuery(props.query as RestBridgeQueryEditorProps['query'] | string);
  return (
    <div>
      <QueryEditor {...props} query={query} />
      <p className={styles.help}>
        Values: the rule&apos;s <code>__text</code> and <code>__value</code> fields when it has them, else its first string
        field.
      </p>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  help: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize, marginTop: theme.spacing(1) }),
});
