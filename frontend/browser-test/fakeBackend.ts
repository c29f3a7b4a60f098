/**
 * A stand-in for the Rust backend's resources (src/resources.rs) inside the browser harness:
 * enough of `validate`, `rules` and `preview` to drive the editors, with the same JSON shapes.
 * It is not the backend's logic; the Rust tests cover that.
 */
import type { Problem, PreviewResponse, RuleInfo } from '../src/types';

type Raw = Record<string, unknown>;

const RULE_KEYS = ['id', 'title', 'description', 'request', 'params', 'response', 'cache', 'timeout'];
const REQUEST_KEYS = ['method', 'url', 'query', 'headers', 'body', 'pagination', 'timezone'];

function rawRules(jsonData: Raw): Raw[] {
  return Array.isArray(jsonData.rules) ? (jsonData.rules as Raw[]) : [];
}

export function validate(body: { url?: string; jsonData: Raw; secureJsonFields?: Record<string, boolean> }): { ok: boolean; problems: Problem[] } {
  const problems: Problem[] = [];
  const ids = new Set<string>();
  rawRules(body.jsonData).forEach((r, i) => {
    const rule = typeof r?.id === 'string' ? r.id : `#${i}`;
    if (!r || typeof r !== 'object' || Array.isArray(r)) {
      problems.push({ rule, path: null, message: 'expected a mapping' });
      return;
    }
    for (const k of Object.keys(r)) {
      if (!RULE_KEYS.includes(k)) {
        problems.push({ rule, path: null, message: `unknown field \`${k}\`, expected one of ${RULE_KEYS.map((x) => `\`${x}\``).join(', ')}` });
      }
    }
    if (typeof r.id !== 'string') {
      problems.push({ rule, path: null, message: 'missing field `id`' });
    } else if (ids.has(r.id)) {
      problems.push({ rule, path: 'id', message: "'id' is used by more than one rule" });
    }
    ids.add(rule);
    const req = (r.request ?? {}) as Raw;
    for (const k of Object.keys(req)) {
      if (!REQUEST_KEYS.includes(k)) {
        problems.push({ rule, path: 'request', message: `at 'request': unknown field \`${k}\`, expected one of ${REQUEST_KEYS.map((x) => `\`${x}\``).join(', ')}` });
      }
    }
    if (typeof req.url !== 'string') {
      problems.push({ rule, path: 'request', message: "at 'request': missing field `url`" });
    }
    const declared = new Set(((r.params ?? []) as Raw[]).map((p) => String(p.name)));
    const text = JSON.stringify(req);
    for (const m of text.matchAll(/\$\{([A-Za-z0-9_]+)(:[^}]*)?\}/g)) {
      if (!m[1].startsWith('__') && !declared.has(m[1])) {
        problems.push({ rule, path: 'request.url', message: `'request.url': \${${m[1]}} is not a declared param` });
      }
    }
    for (const m of text.matchAll(/\$\{__secure\.([A-Za-z0-9_.-]+)\}/g)) {
      if (!body.secureJsonFields?.[m[1]]) {
        problems.push({ rule, path: 'request', message: `'request': \${__secure.${m[1]}} is not set in secureJsonData` });
      }
    }
  });
  if (body.url !== undefined && !/^https?:\/\/[^/]+/.test(body.url)) {
    problems.push({ rule: null, path: 'url', message: "'url' must be an http:// or https:// URL with a host" });
  }
  return { ok: problems.length === 0, problems };
}

export function rules(jsonData: Raw): { rules: RuleInfo[] } {
  return {
    rules: rawRules(jsonData)
      .filter((r) => r && typeof r.id === 'string')
      .map((r) => ({
        id: r.id as string,
        title: (r.title as string) ?? null,
        description: (r.description as string) ?? null,
        format: ((r.response as Raw)?.format as string) ?? 'auto',
        params: ((r.params ?? []) as Raw[]).map((p) => ({
          name: String(p.name),
          title: (p.title as string) ?? null,
          description: (p.description as string) ?? null,
          default: p.default == null ? null : String(p.default),
          options: Array.isArray(p.options) ? p.options.map(String) : null,
          pattern: (p.pattern as string) ?? null,
          required: p.required === true,
        })),
      })),
  };
}

export function preview(baseUrl: string, jsonData: Raw, body: { rule: string; params?: Record<string, string> }): PreviewResponse {
  const rule = rawRules(jsonData).find((r) => r.id === body.rule);
  if (!rule) {
    return { request: null, frames: [], error: { status: 400, errorSource: 'downstream', message: `unknown rule '${body.rule}'` } };
  }
  const values: Record<string, string> = {};
  for (const p of (rule.params ?? []) as Raw[]) {
    const v = body.params?.[String(p.name)] ?? (p.default == null ? undefined : String(p.default));
    if (v !== undefined) {
      values[String(p.name)] = v;
    }
  }
  const render = (t: string) => t.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, n: string) => values[n] ?? '');
  const req = (rule.request ?? {}) as Raw;
  const url = new URL(baseUrl.replace(/\/$/, '') + render(String(req.url ?? '')));
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, string>).sort()) {
    url.searchParams.append(k, render(String(v)));
  }
  return {
    request: { method: String(req.method ?? 'GET'), url: url.toString(), headers: [['Accept-Encoding', 'gzip']], body: null },
    frames: [
      {
        name: body.rule,
        meta: { type: 'timeseries-multi' },
        fields: [
          { name: 'time', type: 'time', labels: null },
          { name: 'value', type: 'number', labels: values },
        ],
        rows: [
          ['2024-01-01T00:00:00.000Z', 1.5],
          ['2024-01-01T01:00:00.000Z', 2.25],
        ],
        totalRows: 2,
      },
    ],
    error: null,
  };
}
