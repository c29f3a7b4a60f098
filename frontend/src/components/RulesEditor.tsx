import React, { useEffect, useMemo, useRef, useState } from 'react';
import { css, cx } from '@emotion/css';
import type { GrafanaTheme2 } from '@grafana/data';
import { Alert, Button, CodeEditor, Icon, RadioButtonGroup, useStyles2, type Monaco, type MonacoEditor } from '@grafana/ui';

import {
  EXAMPLE_RULE,
  locateProblem,
  outlineRules,
  parseRulesText,
  problemRuleIndexes,
  rulesToText,
  type RulesFormat,
  type TextRange,
} from '../lib/rulesText';
import type { Problem } from '../types';
import { setJsonData, type Settings } from './settingsUtil';

export type ValidationState =
  | { kind: 'idle' }
  | { kind: 'pending' }
  | { kind: 'done'; problems: Problem[] }
  | { kind: 'unavailable'; message: string };

interface Props {
  options: Settings;
  onOptionsChange: (o: Settings) => void;
  validation: ValidationState;
}

interface Located {
  problem: Problem;
  range?: TextRange;
}

const MARKER_OWNER = 'restbridge';

/** The message without the key prefix the backend puts first (the path is shown separately). */
export function shortMessage(p: Problem): string {
  return p.path ? p.message.replace(/^(at )?'[^']*':\s*/, '') : p.message;
}

/**
 * `jsonData.rules` as YAML or JSON text. Every edit that parses is emitted as the new rules list;
 * parse errors and the backend's validation problems are shown at their line (editor markers)
 * and under each rule in the outline below the editor.
 */
export function RulesEditor({ options, onOptionsChange, validation }: Props) {
  const styles = useStyles2(getStyles);
  const [format, setFormat] = useState<RulesFormat>('yaml');
  const [text, setText] = useState(() => rulesToText(options.jsonData.rules, 'yaml'));
  const [formatError, setFormatError] = useState<string>();
  const [editorReady, setEditorReady] = useState(0);
  const editorRef = useRef<MonacoEditor | null>(null);
  const monacoRef = useRef<Monaco | null>(null);
  const latest = useRef({ options, onOptionsChange, format });
  latest.current = { options, onOptionsChange, format };
  const emitted = useRef(JSON.stringify(options.jsonData.rules ?? []));

  // Rules changed outside this editor (e.g. the page reloaded the settings): show them.
  const savedRules = JSON.stringify(options.jsonData.rules ?? []);
  useEffect(() => {
    if (savedRules !== emitted.current) {
      emitted.current = savedRules;
      setText(rulesToText(JSON.parse(savedRules) as unknown[], latest.current.format));
    }
  }, [savedRules]);

  const parsed = useMemo(() => parseRulesText(text, format), [text, format]);

  const onTextChange = (next: string) => {
    setText(next);
    setFormatError(undefined);
    const p = parseRulesText(next, latest.current.format);
    if (p.ok) {
      const s = JSON.stringify(p.rules);
      if (s !== emitted.current) {
        emitted.current = s;
        const { options: o, onOptionsChange: emit } = latest.current;
        emit(setJsonData(o, { rules: p.rules }));
      }
    }
  };

  const onFormatChange = (next: RulesFormat) => {
    if (next === format) {
      return;
    }
    if (!parsed.ok) {
      setFormatError(`Fix the ${format.toUpperCase()} error first: the text cannot be converted while it does not parse.`);
      return;
    }
    setFormatError(undefined);
    setFormat(next);
    setText(rulesToText(parsed.rules, next));
  };

  const outline = useMemo(() => (parsed.ok ? outlineRules(parsed) : []), [parsed]);
  const problems = validation.kind === 'done' ? validation.problems : [];
  const ruleProblems = problems.filter((p) => p.rule !== null);
  const settingsProblems = problems.filter((p) => p.rule === null);

  // Problems per rule index, with their place in the text.
  const byRule = useMemo(() => {
    const map = new Map<number, Located[]>();
    const orphans: Problem[] = [];
    if (!parsed.ok) {
      return { map, orphans: ruleProblems };
    }
    for (const problem of ruleProblems) {
      const idx = problemRuleIndexes(parsed.rules, problem);
      if (idx.length === 0) {
        orphans.push(problem);
      }
      for (const i of idx) {
        const list = map.get(i) ?? [];
        list.push({ problem, range: locateProblem(parsed, i, problem) });
        map.set(i, list);
      }
    }
    return { map, orphans };
  }, [parsed, ruleProblems]);

  // Editor markers: the parse error, or the validation problems at their keys.
  useEffect(() => {
    const editor = editorRef.current;
    const monaco = monacoRef.current;
    const model = editor?.getModel();
    if (!editor || !monaco || !model) {
      return;
    }
    const markers: Parameters<Monaco['editor']['setModelMarkers']>[2] = [];
    if (!parsed.ok) {
      const r = parsed.error.range ?? { line: 1, column: 1, endLine: 1, endColumn: 2 };
      markers.push({
        severity: monaco.MarkerSeverity.Error,
        message: parsed.error.message,
        startLineNumber: r.line,
        startColumn: r.column,
        endLineNumber: r.endLine,
        endColumn: r.endColumn,
      });
    } else {
      for (const list of byRule.map.values()) {
        for (const { problem, range } of list) {
          if (!range) {
            continue;
          }
          markers.push({
            severity: monaco.MarkerSeverity.Error,
            message: `${problem.rule}: ${problem.message}`,
            startLineNumber: range.line,
            startColumn: range.column,
            endLineNumber: range.endLine,
            endColumn: range.endColumn,
          });
        }
      }
    }
    monaco.editor.setModelMarkers(model, MARKER_OWNER, markers);
  }, [parsed, byRule, editorReady]);

  const goto = (range?: TextRange) => {
    const editor = editorRef.current;
    if (!editor || !range) {
      return;
    }
    editor.revealLineInCenter(range.line);
    editor.setPosition({ lineNumber: range.line, column: range.column });
    editor.focus();
  };

  const status = (() => {
    if (!parsed.ok) {
      return { icon: 'exclamation-triangle' as const, cls: styles.error, text: 'Not saved: the text does not parse' };
    }
    switch (validation.kind) {
      case 'pending':
        return { icon: 'sync' as const, cls: styles.muted, text: 'Validating…' };
      case 'unavailable':
        return { icon: 'info-circle' as const, cls: styles.muted, text: `Live validation unavailable: ${validation.message}` };
      case 'done':
        return problems.length === 0
          ? { icon: 'check' as const, cls: styles.ok, text: `Valid: ${parsed.rules.length} rule${parsed.rules.length === 1 ? '' : 's'}` }
          : { icon: 'exclamation-triangle' as const, cls: styles.error, text: `${problems.length} problem${problems.length === 1 ? '' : 's'}` };
      default:
        return { icon: 'info-circle' as const, cls: styles.muted, text: '' };
    }
  })();

  return (
    <div data-testid="restbridge-rules-editor">
      <div className={styles.toolbar}>
        <RadioButtonGroup<RulesFormat>
          size="sm"
          options={[
            { label: 'YAML', value: 'yaml' },
            { label: 'JSON', value: 'json' },
          ]}
          value={format}
          onChange={onFormatChange}
        />
        {text.trim() === '' || (parsed.ok && parsed.rules.length === 0) ? (
          <Button size="sm" variant="secondary" icon="plus" onClick={() => onTextChange(rulesToText([EXAMPLE_RULE], format))}>
            Insert an example rule
          </Button>
        ) : null}
        <span className={cx(styles.status, status.cls)} data-testid="rules-status" aria-live="polite">
          {status.text && <Icon name={status.icon} />} {status.text}
        </span>
      </div>
      {formatError && (
        <Alert severity="warning" title={formatError} />
      )}
      <div className={styles.editor}>
        <CodeEditor
          value={text}
          language={format}
          height={360}
          showLineNumbers
          showMiniMap={false}
          monacoOptions={{ tabSize: 2, scrollBeyondLastLine: false, wordWrap: 'off', renderValidationDecorations: 'on' }}
          onChange={onTextChange}
          onBlur={onTextChange}
          onEditorDidMount={(editor, monaco) => {
            editorRef.current = editor;
            monacoRef.current = monaco;
            // Run the markers effect once the editor exists.
            setEditorReady((n) => n + 1);
          }}
        />
      </div>
      {!parsed.ok && (
        <div className={styles.parseError} data-testid="rules-parse-error" role="alert">
          <Icon name="exclamation-triangle" /> {parsed.error.range ? `Line ${parsed.error.range.line}, column ${parsed.error.range.column}: ` : ''}
          {parsed.error.message}
          <div className={styles.muted}>Until it parses, saving keeps the last valid rules ({(options.jsonData.rules ?? []).length}).</div>
        </div>
      )}
      {parsed.ok && parsed.wrapped && (
        <div className={styles.muted}>Read the list under &quot;rules:&quot;; it is saved as jsonData.rules.</div>
      )}
      {settingsProblems.length > 0 && (
        <Alert severity="error" title="Datasource settings" data-testid="settings-problems">
          <ul className={styles.list}>
            {settingsProblems.map((p, i) => (
              <li key={i}>
                {p.path ? <code>{p.path}</code> : null} {shortMessage(p)}
              </li>
            ))}
          </ul>
        </Alert>
      )}
      {parsed.ok && outline.length > 0 && (
        <ul className={styles.outline} data-testid="rules-outline" aria-label="rules">
          {outline.map((r) => {
            const list = byRule.map.get(r.index) ?? [];
            const ok = validation.kind === 'done' && list.length === 0;
            return (
              <li key={r.index} data-testid={`rule-${r.id}`} className={styles.rule}>
                <div className={styles.ruleHead}>
                  <Icon
                    name={list.length ? 'exclamation-triangle' : ok ? 'check' : 'circle'}
                    className={list.length ? styles.error : ok ? styles.ok : styles.muted}
                  />
                  <button type="button" className={styles.link} onClick={() => goto({ line: r.line, column: 1, endLine: r.line, endColumn: 1 })}>
                    {r.id}
                  </button>
                  {r.title && <span className={styles.muted}>{r.title}</span>}
                  <span className={styles.muted}>line {r.line}</span>
                </div>
                {list.length > 0 && (
                  <ul className={styles.problems}>
                    {list.map(({ problem, range }, i) => (
                      <li key={i} className={styles.error} data-testid="rule-problem">
                        {problem.path && <code>{problem.path}</code>} {shortMessage(problem)}{' '}
                        {range && (
                          <button type="button" className={styles.link} onClick={() => goto(range)}>
                            line {range.line}
                          </button>
                        )}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {byRule.orphans.length > 0 && (
        <Alert severity="error" title="Problems of rules not in the text any more">
          <ul className={styles.list}>
            {byRule.orphans.map((p, i) => (
              <li key={i}>
                {p.rule}: {p.message}
              </li>
            ))}
          </ul>
        </Alert>
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  toolbar: css({ display: 'flex', alignItems: 'center', gap: theme.spacing(2), marginBottom: theme.spacing(1) }),
  status: css({ fontSize: theme.typography.bodySmall.fontSize }),
  editor: css({ border: `1px solid ${theme.colors.border.medium}` }),
  ok: css({ color: theme.colors.success.text }),
  error: css({ color: theme.colors.error.text }),
  muted: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize }),
  parseError: css({ color: theme.colors.error.text, margin: theme.spacing(1, 0), whiteSpace: 'pre-wrap' }),
  outline: css({ listStyle: 'none', padding: 0, margin: theme.spacing(1, 0) }),
  rule: css({ padding: theme.spacing(0.5, 0), borderBottom: `1px solid ${theme.colors.border.weak}` }),
  ruleHead: css({ display: 'flex', alignItems: 'center', gap: theme.spacing(1) }),
  problems: css({ listStyle: 'none', margin: theme.spacing(0.5, 0, 0, 3), padding: 0 }),
  list: css({ margin: 0, paddingLeft: theme.spacing(2) }),
  link: css({ background: 'none', border: 'none', padding: 0, color: theme.colors.text.link, cursor: 'pointer', fontFamily: theme.typography.fontFamilyMonospace }),
});
