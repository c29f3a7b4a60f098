import { lastValueFrom } from 'rxjs';
import {
  type AnnotationQuery,
  type AnnotationSupport,
  CoreApp,
  type DataFrame,
  type DataQueryRequest,
  type DataSourceInstanceSettings,
  dateTime,
  type LegacyMetricFindQueryOptions,
  type MetricFindValue,
  type ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { fetchPreview, fetchRules, type ResourceClient } from './lib/api';
import type { PreviewBody, PreviewResponse, RestBridgeJsonData, RestBridgeQuery, RuleInfo } from './types';
import { framesToMetricFindValues, RestBridgeVariableSupport, toVariableQuery } from './variables';

/** An annotation of this datasource: the rule query lives in `target`. */
export type RestBridgeAnnotation = AnnotationQuery<RestBridgeQuery>;

/** Reads an annotation saved by any version (rule at the top level, or in `target`). */
export function prepareAnnotation(json: unknown): RestBridgeAnnotation {
  const anno = { ...((json ?? {}) as RestBridgeAnnotation & { rule?: string; params?: Record<string, string> }) };
  const target: RestBridgeQuery = { refId: 'Anno', ...(anno.target ?? {}) };
  if (!target.rule && typeof anno.rule === 'string') {
    target.rule = anno.rule;
    target.params = anno.params ?? target.params;
  }
  target.params = target.params ?? {};
  delete anno.rule;
  delete anno.params;
  return { ...anno, target };
}

export class DataSource extends DataSourceWithBackend<RestBridgeQuery, RestBridgeJsonData> {
  private rulesPromise?: Promise<RuleInfo[]>;

  /**
   * Annotations run the rule like a panel query; Grafana's standard mapping then reads the
   * fields `time` (or the first time field), `timeEnd`, `title`, `text` (or the first string
   * field) and `tags` (a list, or a comma-separated string); each can be remapped in the
   * annotation editor.
   */
  annotations: AnnotationSupport<RestBridgeQuery> = {
    prepareAnnotation: (json) => prepareAnnotation(json),
    prepareQuery: (anno) => (anno.target?.rule ? { ...anno.target, refId: anno.target.refId || 'Anno' } : undefined),
    getDefaultQuery: () => ({ params: {} }),
  };

  constructor(instanceSettings: DataSourceInstanceSettings<RestBridgeJsonData>) {
    super(instanceSettings);
    this.variables = new RestBridgeVariableSupport(this);
  }

  /** The backend resources of this datasource, for the editors. */
  get resources(): ResourceClient {
    return {
      get: <T>(path: string) => this.getResource<T>(path, undefined, { showErrorAlert: false }),
      post: <T>(path: string, body: unknown) =>
        this.postResource<T>(path, body as Record<string, unknown>, { showErrorAlert: false }),
    };
  }

  /** `GET rules`, fetched once per datasource instance (a failed fetch is retried next time). */
  getRules(refresh = false): Promise<RuleInfo[]> {
    if (refresh || !this.rulesPromise) {
      const p = fetchRules(this.resources);
      this.rulesPromise = p;
      p.catch(() => {
        if (this.rulesPromise === p) {
          this.rulesPromise = undefined;
        }
      });
    }
    return this.rulesPromise;
  }

  /** `POST preview` with dashboard variables resolved. */
  preview(body: PreviewBody, scopedVars: ScopedVars = {}): Promise<PreviewResponse> {
    return fetchPreview(this.resources, { ...body, params: this.interpolateParams(body.params, scopedVars) });
  }

  getDefaultQuery(_app: CoreApp): Partial<RestBridgeQuery> {
    return { params: {} };
  }

  /** Queries without a rule (a new panel) are not sent. */
  filterQuery(query: RestBridgeQuery): boolean {
    return !query.hide && typeof query.rule === 'string' && query.rule !== '';
  }

  interpolateParams(params: Record<string, string> | undefined, scopedVars: ScopedVars): Record<string, string> {
    const srv = getTemplateSrv() as ReturnType<typeof getTemplateSrv> | undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(params ?? {})) {
      // A multi-value variable becomes a comma-separated list.
      out[k] = typeof v === 'string' ? (srv ? srv.replace(v, scopedVars, 'csv') : v) : String(v);
    }
    return out;
  }

  applyTemplateVariables(query: RestBridgeQuery, scopedVars: ScopedVars): RestBridgeQuery {
    return { ...query, params: this.interpolateParams(query.params, scopedVars) };
  }

  getQueryDisplayText(query: RestBridgeQuery): string {
    const params = Object.entries(query.params ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    return `${query.rule ?? '(no rule)'}${params ? `(${params})` : ''}`;
  }

  /** Variable values of a rule query (also used by Grafana's legacy variable paths). */
  async metricFindQuery(query: RestBridgeQuery | string, options?: LegacyMetricFindQueryOptions): Promise<MetricFindValue[]> {
    const target = toVariableQuery(query);
    if (!target.rule) {
      return [];
    }
    const range = options?.range ?? { from: dateTime().subtract(6, 'hour'), to: dateTime(), raw: { from: 'now-6h', to: 'now' } };
    const request: DataQueryRequest<RestBridgeQuery> = {
      requestId: `restbridge-metricFindQuery-${Date.now()}`,
      app: CoreApp.Dashboard,
      targets: [target],
      range,
      interval: '1m',
      intervalMs: 60_000,
      maxDataPoints: 1000,
      scopedVars: options?.scopedVars ?? {},
      timezone: 'utc',
      startTime: Date.now(),
    };
    const rsp = await lastValueFrom(this.query(request));
    if (rsp.errors?.length) {
      throw new Error(rsp.errors[0].message ?? 'query failed');
    }
    return framesToMetricFindValues((rsp.data ?? []) as DataFrame[]);
  }
}
