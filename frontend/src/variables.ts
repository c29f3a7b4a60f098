import { Observable, map } from 'rxjs';
import {
  CustomVariableSupport,
  type DataFrame,
  type DataQueryRequest,
  type DataQueryResponse,
  type Field,
  FieldType,
  type MetricFindValue,
} from '@grafana/data';

import type { DataSource } from './datasource';
import { VariableQueryEditor } from './components/VariableQueryEditor';
import type { RestBridgeQuery } from './types';

function fieldByName(frame: DataFrame, name: string): Field | undefined {
  return frame.fields.find((f) => f.name === name || f.config?.displayName === name);
}

function cellText(v: unknown): string | null {
  if (v === null || v === undefined) {
    return null;
  }
  if (typeof v === 'string') {
    return v;
  }
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') {
    return String(v);
  }
  return JSON.stringify(v);
}

/**
 * Variable values from a rule's frames: the `__text` and `__value` fields when the rule has
 * them, else the first string field (as both text and value), else the first field. Rows with no
 * text are skipped; repeated (text, value) pairs are kept once.
 */
export function framesToMetricFindValues(frames: DataFrame[]): MetricFindValue[] {
  const out: MetricFindValue[] = [];
  const seen = new Set<string>();
  for (const frame of frames) {
    const textField =
      fieldByName(frame, '__text') ??
      fieldByName(frame, '__value') ??
      frame.fields.find((f) => f.type === FieldType.string) ??
      frame.fields.find((f) => f.type !== FieldType.time) ??
      frame.fields[0];
    if (!textField) {
      continue;
    }
    const valueField = fieldByName(frame, '__value') ?? textField;
    const n = frame.length ?? textField.values.length;
    for (let i = 0; i < n; i++) {
      const text = cellText(textField.values[i]);
      if (text === null) {
        continue;
      }
      const value = cellText(valueField.values[i]) ?? text;
      const key = JSON.stringify([text, value]);
      if (seen.has(key)) {
        continue;
      }
      seen.add(key);
      out.push(value === text ? { text } : { text, value });
    }
  }
  return out;
}

/** The values as a frame with `text` and `value` string fields, the shape Grafana reads for variables. */
export function metricFindValuesToFrame(values: MetricFindValue[]): DataFrame {
  const texts = values.map((v) => String(v.text));
  const vals = values.map((v) => String(v.value ?? v.text));
  return {
    name: 'variable values',
    length: values.length,
    fields: [
      { name: 'text', type: FieldType.string, config: {}, values: texts },
      { name: 'value', type: FieldType.string, config: {}, values: vals },
    ],
  };
}

/** A variable query is a normal rule query; an old string query is read as a rule id. */
export function toVariableQuery(query: RestBridgeQuery | string | undefined): RestBridgeQuery {
  if (typeof query === 'string') {
    return { refId: 'variable', rule: query || undefined, params: {} };
  }
  return { ...(query ?? { refId: 'variable' }), refId: query?.refId || 'variable' };
}

/** Dashboard variables fed by a rule ("Query" variables of this datasource). */
export class RestBridgeVariableSupport extends CustomVariableSupport<DataSource, RestBridgeQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: DataSource) {
    super();
  }

  query(request: DataQueryRequest<RestBridgeQuery>): Observable<DataQueryResponse> {
    const targets = request.targets.map((t) => toVariableQuery(t as RestBridgeQuery | string));
    return this.datasource.query({ ...request, targets }).pipe(
      map((rsp) => ({
        ...rsp,
        data: [metricFindValuesToFrame(framesToMetricFindValues((rsp.data ?? []) as DataFrame[]))],
      }))
    );
  }
}
