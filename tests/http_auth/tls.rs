//! TLS against a real HTTPS server (Python `ssl`, `CERT_REQUIRED`) with a throwaway CA,
//! server and client certificate made by `openssl`: custom CA, client certificates and
//! `tlsSkipVerify`.

use serde_json::json;

use crate::common::{assert_no_secrets, column, error_with, frames_ok, query_one};
use crate::servers::TlsServer;
use crate::support::plugin::{context, PluginProcess};

fn jd(tls: serde_json::Value) -> serde_json::Value {
    let mut jd = json!({"rules": [{"id": "hello", "request": {"url": "/hello"},
        "response": {"fields": [{"name": "ok", "path": "$.ok", "type": "bool"},
                                {"name": "client", "path": "$.client", "type": "string"}]}}]});
    for (k, v) in tls.as_object().unwrap() {
        jd[k] = v.clone();
    }
    jd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_ca_client_certificate_and_skip_verify() {
    let Some(srv) = TlsServer::start() else {
        return;
    };
    let pki = srv.pki.clone();
    let p = PluginProcess::spawn(&[]).await;
    let ca = [("tlsCACert", pki.ca_cert.as_str())];
    let ca_and_client = [
        ("tlsCACert", pki.ca_cert.as_str()),
        ("tlsClientCert", pki.client_cert.as_str()),
        ("tlsClientKey", pki.client_key.as_str()),
    ];
    let client = [
        ("tlsClientCert", pki.client_cert.as_str()),
        ("tlsClientKey", pki.client_key.as_str()),
    ];
    let rogue = [
        ("tlsCACert", pki.ca_cert.as_str()),
        ("tlsClientCert", pki.rogue_cert.as_str()),
        ("tlsClientKey", pki.rogue_key.as_str()),
    ];

    // 1. No CA configured: the server certificate is unknown → 502.
    let ctx = context("tls-none", &srv.url, &jd(json!({})), &[], 1);
    let no_ca = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 502);
    assert!(no_ca.contains("unreachable"), "{no_ca}");
    assert!(no_ca.to_lowercase().contains("certificate"), "{no_ca}");

    // 2. Our CA, but no client certificate: the server refuses the handshake → 502.
    let ctx = context(
        "tls-ca",
        &srv.url,
        &jd(json!({"tlsAuthWithCACert": true})),
        &ca,
        1,
    );
    let no_client = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 502);

    // 3. Our CA and the client certificate → 200, and the server saw our client's CN.
    let ctx = context(
        "tls-mtls",
        &srv.url,
        &jd(json!({"tlsAuthWithCACert": true, "tlsAuth": true})),
        &ca_and_client,
        1,
    );
    let f = frames_ok(&query_one(&p, &ctx, "hello", json!({})).await);
    assert_eq!(column(&f, "ok"), vec![json!(true)]);
    assert_eq!(column(&f, "client"), vec![json!("restbridge-client")]);

    // 4. tlsSkipVerify: server verification passes without the CA; the client certificate is
    //    still needed.
    let ctx = context(
        "tls-skip",
        &srv.url,
        &jd(json!({"tlsSkipVerify": true})),
        &[],
        1,
    );
    let skip_no_client = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 502);
    assert!(
        !skip_no_client.contains("UnknownIssuer"),
        "with tlsSkipVerify the server certificate must be accepted: {skip_no_client}"
    );
    let ctx = context(
        "tls-skip-client",
        &srv.url,
        &jd(json!({"tlsSkipVerify": true, "tlsAuth": true})),
        &client,
        1,
    );
    let f = frames_ok(&query_one(&p, &ctx, "hello", json!({})).await);
    assert_eq!(column(&f, "client"), vec![json!("restbridge-client")]);

    // 5. A client certificate from another CA is refused by the server → 502.
    let ctx = context(
        "tls-rogue",
        &srv.url,
        &jd(json!({"tlsAuthWithCACert": true, "tlsAuth": true})),
        &rogue,
        1,
    );
    let rogue_err = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 502);

    // 6. Settings errors: tlsAuth without the key, a CA that is not PEM.
    let ctx = context(
        "tls-bad1",
        &srv.url,
        &jd(json!({"tlsAuth": true})),
        &[("tlsClientCert", pki.client_cert.as_str())],
        1,
    );
    let e1 = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 400);
    assert!(e1.contains("tlsClientKey"), "{e1}");
    let ctx = context(
        "tls-bad2",
        &srv.url,
        &jd(json!({"tlsAuthWithCACert": true})),
        &[("tlsCACert", "not a certificate")],
        1,
    );
    let e2 = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 400);
    assert!(e2.contains("tlsCACert"), "{e2}");
    // 7. serverName: the certificate is checked against this name instead of the URL's host
    //    (the server certificate names IP 127.0.0.1 and tls.restbridge.test).
    let mtls_with =
        |name: &str| jd(json!({"tlsAuthWithCACert": true, "tlsAuth": true, "serverName": name}));
    let ctx = context(
        "tls-sn-ok",
        &srv.url,
        &mtls_with("tls.restbridge.test"),
        &ca_and_client,
        1,
    );
    let f = frames_ok(&query_one(&p, &ctx, "hello", json!({})).await);
    assert_eq!(column(&f, "ok"), vec![json!(true)]);
    let ctx = context(
        "tls-sn-bad",
        &srv.url,
        &mtls_with("other.restbridge.test"),
        &ca_and_client,
        1,
    );
    let wrong_name = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 502);
    assert!(
        wrong_name.to_lowercase().contains("not valid for name"),
        "{wrong_name}"
    );
    let ctx = context(
        "tls-sn-junk",
        &srv.url,
        &mtls_with("not a name!"),
        &ca_and_client,
        1,
    );
    let e3 = error_with(&query_one(&p, &ctx, "hello", json!({})).await, 400);
    assert!(e3.contains("serverName"), "{e3}");

    // The private keys never appear anywhere.
    let key_lines = |pem: &str| -> Vec<String> {
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(str::to_owned)
            .collect()
    };
    let mut keys = key_lines(&pki.client_key);
    keys.extend(key_lines(&pki.rogue_key));
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut texts = p.stderr_lines();
    texts.extend([
        no_ca.clone(),
        no_client.clone(),
        skip_no_client.clone(),
        rogue_err.clone(),
        wrong_name.clone(),
        e1,
        e2,
        e3,
    ]);
    assert_no_secrets("errors and stderr", &texts, &key_refs);
    println!(
        "proved: HTTPS with client-cert-required server — no CA → 502 ({no_ca}); \
         tlsAuthWithCACert without client cert → 502 ({no_client}); CA + tlsAuth → 200 \
         (server saw CN restbridge-client); tlsSkipVerify → server check skipped, still 502 \
         without a client cert ({skip_no_client}), 200 with one; rogue client cert → 502 \
         ({rogue_err}); serverName tls.restbridge.test → 200 on https://127.0.0.1, another \
         name → 502 ({wrong_name}); bad TLS settings → 400"
    );
    println!(
        "TLS server (pid {}) log:\n{}",
        srv.server.pid(),
        crate::common::log_tail(&srv.log)
    );
}
