//! Credentials that must be obtained at run time (config.md §1 `auth`, §2.1 login):
//! OAuth2 client credentials (RFC 6749 §4.4) and a login flow. One [`TokenProvider`] per
//! datasource instance; concurrent queries share one token request.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::fetch::{FetchError, Fetcher, HttpRequest};
use crate::jsonpath::JsonPath;
use crate::rule::JsonTemplate;
use crate::template::{Position, RenderContext, Template};

/// Refresh an OAuth2 token this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// How the token is obtained.
#[derive(Debug)]
pub enum TokenSource {
    /// OAuth2 client credentials.
    OAuth2 {
        /// Token endpoint.
        token_url: reqwest::Url,
        /// Form body: grant_type, client_id, client_secret, scope, endpoint params.
        form: Vec<(String, String)>,
    },
    /// A login request.
    Login {
        /// The request (method, URL, body).
        method: reqwest::Method,
        /// Login URL.
        url: reqwest::Url,
        /// Body template (JSON), if any.
        body: Option<Box<LoginBody>>,
        /// Where the token is in the JSON answer …
        token_path: Option<JsonPath>,
        /// … or which `Set-Cookie` to reuse.
        cookie: Option<String>,
        /// Header carrying the token on rule requests.
        header: String,
        /// Text before the token.
        prefix: String,
        /// Reuse time; `None` = until a 401.
        ttl: Option<Duration>,
    },
}

/// A login body: JSON with templated string leaves, or a text template.
#[derive(Debug)]
pub enum LoginBody {
    /// Sent as JSON.
    Json(JsonTemplate),
    /// Sent as written.
    Text(Template),
}

/// The credential to put on a rule request.
#[derive(Clone, Debug)]
pub struct Credential {
    /// Header name (`Authorization`, `Cookie`, or the login's `header`).
    pub header: String,
    /// Header value (a secret).
    pub value: String,
    /// Which token this is; pass it back to [`TokenProvider::invalidate`] after a 401.
    pub generation: u64,
}

#[derive(Debug, Default)]
struct State {
    current: Option<(Credential, Option<Instant>)>,
    generation: u64,
}

/// Obtains, caches and refreshes a run-time credential.
#[derive(Debug)]
pub struct TokenProvider {
    source: TokenSource,
    state: Mutex<State>,
}

impl TokenProvider {
    /// A provider with no token yet.
    pub fn new(source: TokenSource) -> TokenProvider {
        TokenProvider {
            source,
            state: Mutex::new(State::default()),
        }
    }

    /// The current credential, obtaining a new one when there is none or it is about to
    /// expire. Callers that arrive while a token request runs wait for it (one request).
    ///
    /// # Errors
    /// [`FetchError`] when the token or login request fails or its answer has no token.
    pub async fn credential(
        &self,
        fetcher: &Fetcher,
        secrets: &HashMap<String, String>,
        timeout: Duration,
    ) -> Result<Credential, FetchError> {
        let mut state = self.state.lock().await;
        if let Some((cred, expires)) = &state.current {
            if expires.is_none_or(|e| Instant::now() + REFRESH_MARGIN.min(self.margin()) < e) {
                return Ok(cred.clone());
            }
        }
        let (value, header, lifetime) = self.obtain(fetcher, secrets, timeout).await?;
        state.generation += 1;
        let cred = Credential {
            header,
            value,
            generation: state.generation,
        };
        let expires = lifetime.map(|l| Instant::now() + l);
        state.current = Some((cred.clone(), expires));
        Ok(cred)
    }

    fn margin(&self) -> Duration {
        match self.source {
            TokenSource::OAuth2 { .. } => REFRESH_MARGIN,
            TokenSource::Login { .. } => Duration::ZERO,
        }
    }

    /// Forgets the credential of `generation` (after the upstream answered 401 to it), so the
    /// next [`credential`](Self::credential) call obtains a new one. A newer credential that
    /// another query already obtained is kept.
    pub async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state
            .current
            .as_ref()
            .is_some_and(|(c, _)| c.generation == generation)
        {
            state.current = None;
        }
    }

    async fn obtain(
        &self,
        fetcher: &Fetcher,
        secrets: &HashMap<String, String>,
        timeout: Duration,
    ) -> Result<(String, String, Option<Duration>), FetchError> {
        match &self.source {
            TokenSource::OAuth2 { token_url, form } => {
                let body: String = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form.iter())
                    .finish();
                let req = HttpRequest {
                    method: reqwest::Method::POST,
                    url: token_url.clone(),
                    headers: vec![
                        (
                            "Content-Type".into(),
                            "application/x-www-form-urlencoded".into(),
                        ),
                        ("Accept".into(), "application/json".into()),
                    ],
                    body: Some(body.into_bytes()),
                };
                let masked = token_url.to_string();
                let got = fetcher.fetch_uncached(&req, &masked, timeout).await?;
                let v: serde_json::Value =
                    serde_json::from_slice(&got.body).map_err(|e| FetchError::Body {
                        url: masked.clone(),
                        message: format!("OAuth2 token response is not JSON: {e}"),
                    })?;
                let token = v
                    .get("access_token")
                    .and_then(|t| t.as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| FetchError::Body {
                        url: masked.clone(),
                        message: "OAuth2 token response has no access_token".into(),
                    })?;
                let lifetime = v
                    .get("expires_in")
                    .and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok()))
                    .map(Duration::from_secs);
                Ok((format!("Bearer {token}"), "Authorization".into(), lifetime))
            }
            TokenSource::Login {
                method,
                url,
                body,
                token_path,
                cookie,
                header,
                prefix,
                ttl,
            } => {
                let empty = HashMap::new();
                let ctx = RenderContext {
                    params: &empty,
                    from_ms: 0,
                    to_ms: 0,
                    interval_ms: 0,
                    max_data_points: 0,
                    secrets,
                    mask_secrets: false,
                    timezone: None,
                };
                let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
                let body = match body.as_deref() {
                    None => None,
                    Some(LoginBody::Text(t)) => Some(
                        t.render(&ctx, Position::Raw)
                            .map_err(|e| FetchError::Request(format!("auth.body: {e}")))?
                            .into_bytes(),
                    ),
                    Some(LoginBody::Json(t)) => {
                        headers.push(("Content-Type".into(), "application/json".into()));
                        let v = crate::instance::render_json(t, &ctx)
                            .map_err(|e| FetchError::Request(format!("auth.body: {e}")))?;
                        Some(v.to_string().into_bytes())
                    }
                };
                let req = HttpRequest {
                    method: method.clone(),
                    url: url.clone(),
                    headers,
                    body,
                };
                let masked = url.to_string();
                let got = fetcher.fetch_uncached(&req, &masked, timeout).await?;
                let token = if let Some(name) = cookie {
                    let value = got
                        .set_cookies
                        .iter()
                        .find_map(|c| {
                            let (k, v) = c.split(';').next()?.split_once('=')?;
                            (k.trim() == name).then(|| v.trim().to_owned())
                        })
                        .ok_or_else(|| FetchError::Body {
                            url: masked.clone(),
                            message: format!("the login response set no cookie '{name}'"),
                        })?;
                    return Ok((format!("{name}={value}"), "Cookie".into(), *ttl));
                } else if let Some(path) = token_path {
                    let v: serde_json::Value =
                        serde_json::from_slice(&got.body).map_err(|e| FetchError::Body {
                            url: masked.clone(),
                            message: format!("login response is not JSON: {e}"),
                        })?;
                    match path.select_one(&v) {
                        Ok(Some(serde_json::Value::String(s))) if !s.is_empty() => s.clone(),
                        Ok(Some(other)) if other.is_number() => other.to_string(),
                        _ => {
                            return Err(FetchError::Body {
                                url: masked,
                                message: format!(
                                    "the login response has no token at {}",
                                    path.as_str()
                                ),
                            })
                        }
                    }
                } else {
                    return Err(FetchError::Request(
                        "auth type login needs 'tokenPath' or 'cookie'".into(),
                    ));
                };
                Ok((format!("{prefix}{token}"), header.clone(), *ttl))
            }
        }
    }
}
