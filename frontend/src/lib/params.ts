import type { ParamInfo, RuleInfo } from '../types';

/** True when a value contains a Grafana template variable (`$var`, `${var}`, `[[var]]`). */
export function hasTemplateVariable(value: string): boolean {
  return /\$[A-Za-z_]\w*|\$\{[^}]+\}|\[\[[^\]]+\]\]/.test(value);
}

const patternCache = new Map<string, RegExp | null>();

/**
 * The param's `pattern` as a whole-value JS RegExp, or null when JS cannot compile it (the
 * backend uses Rust's regex syntax, which is close but not equal; the backend stays the judge).
 */
export function compilePattern(pattern: string): RegExp | null {
  if (patternCache.has(pattern)) {
    return patternCache.get(pattern)!;
  }
  let source = pattern;
  let flags = 'u';
  // Rust allows leading inline flags such as (?i) or (?is); JS wants them as flags.
  const m = /^\(\?([ims]+)\)/.exec(source);
  if (m) {
    source = source.slice(m[0].length);
    flags += [...new Set(m[1])].join('');
  }
  let re: RegExp | null;
  try {
    re = new RegExp(`^(?:${source})$`, flags);
  } catch {
    re = null;
  }
  patternCache.set(pattern, re);
  return re;
}

export interface ParamCheckOptions {
  /** Dashboard context: values with template variables are resolved later, so they are not checked. */
  variablesAllowed: boolean;
}

/** The error to show next to a param's input, or undefined when the value is acceptable. */
export function checkParam(param: ParamInfo, value: string | undefined, opts: ParamCheckOptions): string | undefined {
  const v = value ?? '';
  if (v === '') {
    if (param.required) {
      return param.default != null && param.default !== ''
        ? `required: set a value (the default ${JSON.stringify(param.default)} does not count)`
        : 'required';
    }
    return undefined;
  }
  if (opts.variablesAllowed && hasTemplateVariable(v)) {
    return undefined;
  }
  if (param.options && param.options.length > 0 && !param.options.includes(v)) {
    return `must be one of ${param.options.map((o) => JSON.stringify(o)).join(', ')}`;
  }
  if (param.pattern) {
    const re = compilePattern(param.pattern);
    if (re && !re.test(v)) {
      return `does not match the pattern ${param.pattern}`;
    }
  }
  return undefined;
}

/** Every param error of a query, by param name, including params the rule does not declare. */
export function checkParams(
  rule: RuleInfo,
  params: Record<string, string> | undefined,
  opts: ParamCheckOptions
): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const p of rule.params) {
    const e = checkParam(p, params?.[p.name], opts);
    if (e) {
      errors[p.name] = e;
    }
  }
  for (const name of Object.keys(params ?? {})) {
    if (!rule.params.some((p) => p.name === name)) {
      const known = rule.params.map((p) => p.name).join(', ') || 'none';
      errors[name] = `rule '${rule.id}' has no param '${name}' (declared: ${known})`;
    }
  }
  return errors;
}

/** Params to start a newly picked rule with: required params that have a default get it. */
export function initialParams(rule: RuleInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of rule.params) {
    if (p.required && p.default != null && p.default !== '') {
      out[p.name] = p.default;
    }
  }
  return out;
}

/** Drops empty values (an absent param uses its default). */
export function cleanParams(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v != null) {
      out[k] = v;
    }
  }
  return out;
}
