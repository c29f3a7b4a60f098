//! Grafana datasource provisioning YAML (protocol.md §5.5), read by the command-line tool
//! exactly as Grafana would deliver it to the plugin.
//!
//! Grafana expands environment variables in provisioning values (`$NAME`, `${NAME}`, and
//! `$$` for a literal `$`). RestBridge templates use `${...}` too, so in a provisioning file a
//! rule template must be written `$${lat}`; this loader expands like Grafana and warns when
//! an expansion swallowed something that looks like a RestBridge template.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::settings::{DataSourceSettings, Scalar};

/// The plugin id datasources of this plugin carry as `type` (config.md top).
pub const PLUGIN_ID: &str = "restbridge-rest-datasource";

/// A provisioning file (apiVersion 1).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisioningFile {
    #[serde(default)]
    datasources: Vec<ProvisionedDatasource>,
    #[serde(flatten)]
    _extra: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionedDatasource {
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    basic_auth: Option<bool>,
    #[serde(default)]
    basic_auth_user: Option<String>,
    #[serde(default)]
    json_data: Option<Value>,
    #[serde(default)]
    secure_json_data: Option<BTreeMap<String, Scalar>>,
    #[serde(flatten)]
    _extra: BTreeMap<String, Value>,
}

/// One datasource from a provisioning file, ready for the plugin code path.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Datasource name.
    pub name: String,
    /// Datasource type (plugin id).
    pub kind: String,
    /// The settings as Grafana would send them.
    pub settings: DataSourceSettings,
}

/// What loading found: datasources plus warnings about environment expansion.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Datasources of type [`PLUGIN_ID`] (others are skipped).
    pub datasources: Vec<Provisioned>,
    /// Human-readable warnings.
    pub warnings: Vec<String>,
}

/// Parses provisioning YAML text. `env` looks up environment variables (pass
/// `|k| std::env::var(k).ok()` for the real environment).
///
/// # Errors
/// A message with the YAML error (line and column) or a missing `name`.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, String> {
    let options = serde_saphyr::options! { strict_booleans: true };
    let file: ProvisioningFile = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| format!("invalid provisioning YAML: {e}"))?;
    let mut loaded = Loaded::default();
    for (i, ds) in file.datasources.into_iter().enumerate() {
        let kind = ds.kind.clone().unwrap_or_default();
        if kind != PLUGIN_ID {
            continue;
        }
        let mut warn = |w: String| {
            loaded
                .warnings
                .push(format!("datasource '{}': {w}", ds.name))
        };
        let mut expand_str = |s: &str| expand_env(s, env, &mut warn);
        let mut json_data = ds.json_data.unwrap_or(Value::Object(Default::default()));
        expand_value(&mut json_data, &mut expand_str);
        let secure = ds
            .secure_json_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let v = expand_str(&v.to_text());
                (k, v)
            })
            .collect();
        let url = expand_str(ds.url.as_deref().unwrap_or_default());
        let settings = DataSourceSettings {
            uid: ds.uid.clone().unwrap_or_else(|| format!("provisioned-{i}")),
            name: ds.name.clone(),
            url,
            basic_auth_enabled: ds.basic_auth.unwrap_or(false),
            basic_auth_user: expand_str(ds.basic_auth_user.as_deref().unwrap_or_default()),
            json_data: serde_json::to_vec(&json_data).unwrap_or_default(),
            secure_json_data: secure,
            last_updated_ms: 1,
        };
        loaded.datasources.push(Provisioned {
            name: ds.name,
            kind,
            settings,
        });
    }
    Ok(loaded)
}

fn expand_value(v: &mut Value, f: &mut dyn FnMut(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| expand_value(i, f)),
        Value::Object(map) => map.values_mut().for_each(|i| expand_value(i, f)),
        _ => {}
    }
}

/// Expands `$NAME` / `${NAME}` from `env` (unset → empty) and `$$` → `$`, as Grafana's
/// provisioning does. Warns when an unset `${name}` looks like a RestBridge template.
pub fn expand_env(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(String),
) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&s[literal_start..i]);
        if b.get(i + 1) == Some(&b'$') {
            out.push('$');
            i += 2;
        } else if b.get(i + 1) == Some(&b'{') {
            match s[i + 2..].find('}') {
                Some(end) => {
                    let name = &s[i + 2..i + 2 + end];
                    match env(name) {
                        Some(v) => out.push_str(&v),
                        None => warn(format!(
                            "'${{{name}}}' was replaced by the (unset) environment variable \
                             '{name}' as Grafana's provisioning does; write '$${{{name}}}' for a \
                             RestBridge template"
                        )),
                    }
                    i += 3 + end;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            }
        } else {
            let len = s[i + 1..]
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            if len == 0 {
                out.push('$');
            } else {
                let name = &s[i + 1..i + 1 + len];
                out.push_str(&env(name).unwrap_or_default());
            }
            i += 1 + len;
        }
        literal_start = i;
    }
    out.push_str(&s[literal_start..]);
    out
}

/// Reads and parses a provisioning file with the process environment.
///
/// # Errors
/// A message naming the file and the I/O or YAML problem.
pub fn load_file(path: &std::path::Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text, &|k| std::env::var(k).ok()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Picks one datasource by name, or the only one when `name` is `None`.
///
/// # Errors
/// A message listing the available names.
pub fn pick<'a>(loaded: &'a Loaded, name: Option<&str>) -> Result<&'a Provisioned, String> {
    let names: Vec<&str> = loaded.datasources.iter().map(|d| d.name.as_str()).collect();
    match name {
        Some(n) => loaded
            .datasources
            .iter()
            .find(|d| d.name == n)
            .ok_or_else(|| {
                format!(
                    "no datasource named '{n}' of type {PLUGIN_ID} (found: {})",
                    names.join(", ")
                )
            }),
        None => match loaded.datasources.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("the file has no datasource of type {PLUGIN_ID}")),
            _ => Err(format!(
                "the file has several RestBridge datasources; pick one with --datasource ({})",
                names.join(", ")
            )),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "PORT").then(|| "9090".to_owned())
    }

    #[test]
    fn expands_like_grafana() {
        let mut warnings = Vec::new();
        let mut expand = |s: &str| expand_env(s, &env, &mut |m: String| warnings.push(m));
        assert_eq!(expand("http://h:$PORT/x"), "http://h:9090/x");
        assert_eq!(expand("http://h:${PORT}/x"), "http://h:9090/x");
        assert_eq!(expand("/q/$${lat}"), "/q/${lat}");
        assert_eq!(expand("cost $ 5"), "cost $ 5");
        assert_eq!(expand("/q/${lat}"), "/q/");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("$${lat}"), "{}", warnings[0]);
    }

    #[test]
    fn parses_datasources_of_our_type_only() {
        let yaml = r#"
apiVersion: 1
datasources:
  - name: Other
    type: prometheus
  - name: Rest
    type: restbridge-rest-datasource
    uid: rest1
    url: http://127.0.0.1:$PORT
    basicAuth: true
    basicAuthUser: u
    jsonData:
      country: NO
      rules:
        - id: r
          request: {url: "/x/$${name}"}
    secureJsonData:
      basicAuthPassword: pw
"#;
        let loaded = parse(yaml, &env).unwrap();
        assert_eq!(loaded.datasources.len(), 1);
        let ds = &loaded.datasources[0];
        assert_eq!(ds.settings.url, "http://127.0.0.1:9090");
        assert!(ds.settings.basic_auth_enabled);
        assert_eq!(ds.settings.secure_json_data["basicAuthPassword"], "pw");
        let jd: Value = serde_json::from_slice(&ds.settings.json_data).unwrap();
        assert_eq!(jd["rules"][0]["request"]["url"], "/x/${name}");
        assert_eq!(jd["country"], "NO", "strict booleans keep NO a string");
        assert!(pick(&loaded, None).is_ok());
        assert!(pick(&loaded, Some("nope")).unwrap_err().contains("Rest"));
    }
}
