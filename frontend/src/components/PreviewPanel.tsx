import React, { useState } from 'react';
import { css } from '@emotion/css';
import type { GrafanaTheme2, ScopedVars, TimeRange } from '@grafana/data';
import { Alert, Button, Collapse, useStyles2 } from '@grafana/ui';

import { errorMessage } from '../lib/api';
import type { PreviewFrame, PreviewResponse, RestBridgeQuery } from '../types';
import type { DataSource } from '../datasource';
import { useDebouncedEffect } from './useDebouncedEffect';

export const PREVIEW_DEBOUNCE_MS = 600;

export interface PreviewPanelProps {
  datasource: DataSource;
  query: RestBridgeQuery;
  range?: TimeRange;
  scopedVars?: ScopedVars;
  /** When set, the preview is not requested and this says why. */
  blockedReason?: string;
  debounceMs?: number;
}

type State =
  | { kind: 'idle' }
  | { kind: 'loading'; last?: PreviewResponse }
  | { kind: 'done'; rsp: PreviewResponse }
  | { kind: 'failed'; message: string };

function cell(v: unknown): string {
  if (v === null || v === undefined) {
    return '';
  }
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function FrameTable({ frame, index }: { frame: PreviewFrame; index: number }) {
  const styles = useStyles2(getStyles);
  const labels = frame.fields
    .map((f) => (f.labels && Object.keys(f.labels).length ? `${f.name}{${Object.entries(f.labels).map(([k, v]) => `${k}="${v}"`).join(', ')}}` : ''))
    .filter(Boolean);
  return (
    <div className={styles.frame} data-testid={`preview-frame-${index}`}>
      <div className={styles.frameTitle}>
        Frame {index + 1}
        {frame.name ? ` · ${frame.name}` : ''}
        {frame.meta?.type ? ` · ${String(frame.meta.type)}` : ''} · {frame.totalRows} row{frame.totalRows === 1 ? '' : 's'}
        {frame.rows.length < frame.totalRows ? ` (first ${frame.rows.length} shown)` : ''}
      </div>
      {labels.length > 0 && <div className={styles.muted}>{labels.join('  ')}</div>}
      {frame.meta?.notices?.map((n, i) => (
        <div key={i} className={styles.notice}>
          {n.severity ? `${n.severity}: ` : ''}
          {n.text}
        </div>
      ))}
      <div className={styles.tableWrap}>
        <table className={styles.table}>
          <thead>
            <tr>
              {frame.fields.map((f, i) => (
                <th key={i}>
                  {f.name} <span className={styles.muted}>{f.type}</span>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {frame.rows.map((row, r) => (
              <tr key={r}>
                {row.map((v, c) => (
                  <td key={c}>{cell(v)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/** The request a query renders to (secrets masked) and its first rows, from `POST preview`. */
export function PreviewPanel({ datasource, query, range, scopedVars, blockedReason, debounceMs = PREVIEW_DEBOUNCE_MS }: PreviewPanelProps) {
  const styles = useStyles2(getStyles);
  const [open, setOpen] = useState(true);
  const [state, setState] = useState<State>({ kind: 'idle' });
  const [nonce, setNonce] = useState(0);
  const from = range ? range.from.valueOf() : undefined;
  const to = range ? range.to.valueOf() : undefined;
  const key = JSON.stringify([query.rule, query.params ?? {}, from, to, nonce]);
  const enabled = open && !!query.rule && !blockedReason;

  useDebouncedEffect(
    async (isCurrent) => {
      setState((s) => ({ kind: 'loading', last: s.kind === 'done' ? s.rsp : s.kind === 'loading' ? s.last : undefined }));
      try {
        const rsp = await datasource.preview({ rule: query.rule!, params: query.params ?? {}, from, to }, scopedVars);
        if (isCurrent()) {
          setState({ kind: 'done', rsp });
        }
      } catch (e) {
        if (isCurrent()) {
          setState({ kind: 'failed', message: errorMessage(e) });
        }
      }
    },
    key,
    debounceMs,
    enabled
  );

  const rsp = state.kind === 'done' ? state.rsp : state.kind === 'loading' ? state.last : undefined;
  return (
    <Collapse label="Preview: rendered request and first rows" isOpen={open} onToggle={() => setOpen(!open)} collapsible loading={state.kind === 'loading'}>
      <div data-testid="restbridge-preview">
        {!query.rule && <div className={styles.muted}>Choose a rule to see the request it sends.</div>}
        {query.rule && blockedReason && <div className={styles.muted}>{blockedReason}</div>}
        {enabled && state.kind === 'failed' && (
          <Alert severity="warning" title="Preview unavailable">
            {state.message}
          </Alert>
        )}
        {enabled && rsp && (
          <>
            {rsp.request && (
              <div className={styles.request} data-testid="preview-request">
                <code className={styles.requestLine}>
                  <strong>{rsp.request.method}</strong> {rsp.request.url}
                </code>
                {rsp.request.headers.length > 0 && (
                  <ul className={styles.headers}>
                    {rsp.request.headers.map(([name, value], i) => (
                      <li key={i}>
                        <code>
                          {name}: {value}
                        </code>
                      </li>
                    ))}
                  </ul>
                )}
                {rsp.request.body != null && rsp.request.body !== '' && <pre className={styles.body}>{rsp.request.body}</pre>}
              </div>
            )}
            {rsp.error && (
              <Alert severity="error" title={`Query fails${rsp.error.status ? ` (status ${rsp.error.status}${rsp.error.errorSource ? `, ${rsp.error.errorSource}` : ''})` : ''}`}>
                <span data-testid="preview-error">{rsp.error.message}</span>
              </Alert>
            )}
            {!rsp.error && rsp.frames.length === 0 && <div className={styles.muted}>The response gave no frames (alerting: NoData).</div>}
            {rsp.frames.map((f, i) => (
              <FrameTable frame={f} index={i} key={i} />
            ))}
          </>
        )}
        {enabled && (
          <Button size="sm" variant="secondary" icon="sync" onClick={() => setNonce(nonce + 1)} className={styles.refresh}>
            Run preview again
          </Button>
        )}
      </div>
    </Collapse>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  muted: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize }),
  request: css({ marginBottom: theme.spacing(1) }),
  requestLine: css({ display: 'block', wordBreak: 'break-all', whiteSpace: 'pre-wrap' }),
  headers: css({ listStyle: 'none', margin: theme.spacing(0.5, 0, 0, 2), padding: 0 }),
  body: css({ marginTop: theme.spacing(0.5), maxHeight: 160, overflow: 'auto' }),
  frame: css({ marginTop: theme.spacing(1) }),
  frameTitle: css({ fontWeight: theme.typography.fontWeightMedium }),
  notice: css({ color: theme.colors.warning.text, fontSize: theme.typography.bodySmall.fontSize }),
  tableWrap: css({ overflowX: 'auto', maxHeight: 320, overflowY: 'auto' }),
  table: css({
    borderCollapse: 'collapse',
    fontSize: theme.typography.bodySmall.fontSize,
    'th, td': { border: `1px solid ${theme.colors.border.weak}`, padding: theme.spacing(0.25, 0.75), textAlign: 'left', whiteSpace: 'nowrap' },
  }),
  refresh: css({ marginTop: theme.spacing(1) }),
});
