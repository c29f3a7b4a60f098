//! `oauthPassThru` and `keepCookies`: the Grafana user's identity from
//! `QueryDataRequest.headers` is forwarded only when configured, only the listed cookies go
//! upstream, and users with different identities never share a cached answer.

use serde_json::json;

use crate::common::{assert_no_secrets, frames_ok, query_with_headers};
use crate::support::plugin::{context, PluginProcess};
use crate::support::stub::{Route, Stub};

fn rules() -> serde_json::Value {
    json!([{"id": "me", "request": {"url": "/me"},
            "response": {"fields": [{"name": "ok", "path": "$.ok", "type": "bool"}]}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_forwarded_only_with_oauth_pass_thru_and_listed_cookies() {
    let stub = Stub::start(vec![("/me", Route::json(r#"{"ok": true}"#))]).await;
    let p = PluginProcess::spawn(&[]).await;
    let on = context(
        "pt-on",
        &stub.url(),
        &json!({"oauthPassThru": true, "keepCookies": ["session", "lang"],
                "cache": {"ttlSeconds": 0}, "rules": rules()}),
        &[],
        1,
    );
    let off = context(
        "pt-off",
        &stub.url(),
        &json!({"cache": {"ttlSeconds": 0}, "rules": rules()}),
        &[],
        1,
    );
    let user_token = "Bearer user-one-access-token";
    let id_token = "id-token-of-user-one";
    let cookie = "session=s3ss10n; grafana_session=gs-secret; lang=de; tracking=abc";

    // Grafana's current form: `http_`-prefixed keys.
    let prefixed = [
        ("http_Authorization", user_token),
        ("http_X-Id-Token", id_token),
        ("http_Cookie", cookie),
    ];
    // The older un-prefixed form.
    let plain = [
        ("Authorization", user_token),
        ("X-Id-Token", id_token),
        ("Cookie", cookie),
    ];
    let mut report = Vec::new();
    for (form, headers) in [("http_-prefixed", &prefixed[..]), ("plain", &plain[..])] {
        let r = query_with_headers(&p, &on, headers, "me", json!({})).await;
        frames_ok(&r);
        let seen = stub.seen().pop().unwrap();
        assert_eq!(
            seen.headers.get("authorization").map(String::as_str),
            Some(user_token),
            "{form}"
        );
        assert_eq!(
            seen.headers.get("x-id-token").map(String::as_str),
            Some(id_token),
            "{form}"
        );
        assert_eq!(
            seen.headers.get("cookie").map(String::as_str),
            Some("session=s3ss10n; lang=de"),
            "{form}: only keepCookies are forwarded"
        );
        report.push(format!("{form}: cookie '{}'", seen.headers["cookie"]));

        let r = query_with_headers(&p, &off, headers, "me", json!({})).await;
        frames_ok(&r);
        let seen = stub.seen().pop().unwrap();
        for h in ["authorization", "x-id-token", "cookie"] {
            assert!(
                !seen.headers.contains_key(h),
                "{form}: {h} forwarded without oauthPassThru/keepCookies: {:?}",
                seen.headers
            );
        }
    }
    // keepCookies without oauthPassThru forwards cookies only.
    let cookies_only = context(
        "pt-cookies",
        &stub.url(),
        &json!({"keepCookies": ["session"], "cache": {"ttlSeconds": 0}, "rules": rules()}),
        &[],
        1,
    );
    frames_ok(&query_with_headers(&p, &cookies_only, &prefixed, "me", json!({})).await);
    let seen = stub.seen().pop().unwrap();
    assert_eq!(seen.headers["cookie"], "session=s3ss10n");
    assert!(!seen.headers.contains_key("authorization"));
    assert!(!seen.headers.contains_key("x-id-token"));
    assert_no_secrets(
        "stderr",
        &p.stderr_lines(),
        &["user-one-access-token", id_token, "s3ss10n", "gs-secret"],
    );
    println!(
        "proved: oauthPassThru forwards Authorization and X-Id-Token ({}); without it nothing \
         is forwarded; keepCookies alone forwards only the listed cookies; none in the logs",
        report.join("; ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_users_get_different_cache_entries() {
    let stub = Stub::start(vec![("/me", Route::json(r#"{"ok": true}"#))]).await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context(
        "pt-cache",
        &stub.url(),
        &json!({"oauthPassThru": true, "keepCookies": ["session"],
                "cache": {"ttlSeconds": 300}, "rules": rules()}),
        &[],
        1,
    );
    let alice = [("http_Authorization", "Bearer alice-token")];
    let bob = [("http_Authorization", "Bearer bob-token")];
    frames_ok(&query_with_headers(&p, &ctx, &alice, "me", json!({})).await);
    frames_ok(&query_with_headers(&p, &ctx, &bob, "me", json!({})).await);
    assert_eq!(stub.hits(), 2, "bob must not get alice's cached answer");
    frames_ok(&query_with_headers(&p, &ctx, &alice, "me", json!({})).await);
    frames_ok(&query_with_headers(&p, &ctx, &bob, "me", json!({})).await);
    assert_eq!(stub.hits(), 2, "each user's own answer is cached");
    // Same user, different kept cookie → different entry; an unlisted cookie does not matter.
    let s1 = [
        ("http_Authorization", "Bearer alice-token"),
        ("http_Cookie", "session=one; other=1"),
    ];
    let s1b = [
        ("http_Authorization", "Bearer alice-token"),
        ("http_Cookie", "session=one; other=2"),
    ];
    let s2 = [
        ("http_Authorization", "Bearer alice-token"),
        ("http_Cookie", "session=two"),
    ];
    frames_ok(&query_with_headers(&p, &ctx, &s1, "me", json!({})).await);
    frames_ok(&query_with_headers(&p, &ctx, &s1b, "me", json!({})).await);
    assert_eq!(stub.hits(), 3);
    frames_ok(&query_with_headers(&p, &ctx, &s2, "me", json!({})).await);
    assert_eq!(stub.hits(), 4);
    let auths: Vec<String> = stub
        .seen()
        .iter()
        .map(|s| s.headers.get("authorization").cloned().unwrap_or_default())
        .collect();
    println!(
        "proved: two users (different Authorization) → 2 upstream calls, repeats served from \
         their own cache entries; kept cookies split the cache, unlisted ones do not; upstream \
         saw {auths:?}"
    );
}
