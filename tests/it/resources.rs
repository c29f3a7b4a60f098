//! Backend resources for the editors (CallResource): rules, validate, preview.

use futures_util::StreamExt;
use restbridge::pb::pluginv2;
use restbridge::pb::pluginv2::resource_client::ResourceClient;
use serde_json::{json, Value};

use crate::support::plugin::{context, PluginProcess};
use crate::support::stub::{Route, Stub};

const SECRET: &str = "res-secret-5d1c";

fn jd() -> Value {
    json!({
        "auth": {"type": "apiKey", "in": "query", "name": "key"},
        "rules": [
            {"id": "items", "title": "Items", "description": "All items",
             "request": {"url": "/items", "query": {"q": "${q}"}, "headers": {"X-Trace": "t-${q}"}},
             "params": [{"name": "q", "default": "a", "options": ["a", "b"]},
                        {"name": "n", "pattern": "[0-9]+", "required": true}],
             "response": {"rows": "$[*]", "fields": [
                {"name": "name", "path": "$.name"}, {"name": "v", "path": "$.v", "type": "number"}]}}
        ]
    })
}

async fn call(
    p: &PluginProcess,
    ctx: &pluginv2::PluginContext,
    method: &str,
    path: &str,
    body: Value,
) -> (i32, Value) {
    let mut client = ResourceClient::new(p.channel.clone());
    let mut stream = client
        .call_resource(pluginv2::CallResourceRequest {
            plugin_context: Some(ctx.clone()),
            path: path.into(),
            method: method.into(),
            url: format!("/api/datasources/uid/x/resources/{path}"),
            headers: Default::default(),
            body: if body.is_null() {
                Vec::new()
            } else {
                serde_json::to_vec(&body).unwrap()
            },
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first.headers["Content-Type"].values,
        vec!["application/json"]
    );
    (first.code, serde_json::from_slice(&first.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_validate_and_preview() {
    let up = Stub::start(vec![(
        "/items",
        Route::json(r#"[{"name":"x","v":1.5},{"name":"y","v":2}]"#),
    )])
    .await;
    let p = PluginProcess::spawn(&[]).await;
    let ctx = context("r", &up.url(), &jd(), &[("apiKey", SECRET)], 1);

    let (code, rules) = call(&p, &ctx, "GET", "rules", Value::Null).await;
    assert_eq!(code, 200);
    let r = &rules["rules"][0];
    assert_eq!(r["id"], "items");
    assert_eq!(r["title"], "Items");
    assert_eq!(
        r["params"][0],
        json!({"name": "q", "title": null, "description": null, "default": "a", "options": ["a", "b"], "pattern": null, "required": false})
    );
    assert_eq!(r["params"][1]["pattern"], "[0-9]+");
    assert_eq!(r["params"][1]["required"], true);

    // Validate: every problem, each with rule id and key path.
    let bad = json!({"jsonData": {
        "rules": [
            {"id": "a", "request": {"url": "/x/${nope}"}, "response": {"fields": [{"name": "f", "path": "$.f"}]}},
            {"id": "b", "request": {"url": "/x"}, "response": {"fields": [{"name": "f", "path": "$.f", "type": "float"}]}},
            {"id": "c", "request": {"url": "/x", "headers": {"K": "${__secure.newKey}"}}, "response": {"fields": [{"name": "f", "path": "$.f"}]}}
        ],
        "healthCheck": {"rule": "zzz"},
        "timeout": -1
    }, "secureJsonFields": {"newKey": true}});
    let (code, v) = call(&p, &ctx, "POST", "validate", bad).await;
    assert_eq!(code, 200);
    assert_eq!(v["ok"], false);
    let problems = v["problems"].as_array().unwrap();
    let find = |rule: Value| problems.iter().find(|x| x["rule"] == rule).cloned();
    let a = find(json!("a")).expect("problem of rule a");
    assert_eq!(a["path"], "request.url");
    assert!(a["message"].as_str().unwrap().contains("nope"));
    let b = find(json!("b")).expect("problem of rule b");
    assert_eq!(b["path"], "response.fields[0].type");
    assert!(
        find(json!("c")).is_none(),
        "secureJsonFields marks newKey as set: {problems:?}"
    );
    assert!(
        problems.iter().any(|x| x["path"] == "healthCheck.rule"),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|x| x["path"] == "jsonData.timeout"),
        "{problems:?}"
    );
    let (_, ok) = call(&p, &ctx, "POST", "validate", jd()).await;
    assert_eq!(ok, json!({"ok": true, "problems": []}));

    // Preview: rendered request with secrets masked, first rows.
    let (code, pv) = call(
        &p,
        &ctx,
        "POST",
        "preview",
        json!({"rule": "items", "params": {"q": "b", "n": "3"}, "maxRows": 1}),
    )
    .await;
    assert_eq!(code, 200, "{pv}");
    assert_eq!(pv["request"]["method"], "GET");
    assert_eq!(
        pv["request"]["url"],
        format!("{}/items?q=b&key=***", up.url())
    );
    assert!(pv["request"]["headers"]
        .as_array()
        .unwrap()
        .contains(&json!(["X-Trace", "t-b"])));
    assert_eq!(pv["frames"][0]["rows"], json!([["x", 1.5]]));
    assert_eq!(pv["frames"][0]["totalRows"], 2);
    assert_eq!(pv["frames"][0]["fields"][1]["type"], "float64");
    assert!(!pv.to_string().contains(SECRET));
    let (_, pv) = call(
        &p,
        &ctx,
        "POST",
        "preview",
        json!({"rule": "items", "params": {"q": "zz"}}),
    )
    .await;
    assert_eq!(pv["error"]["status"], 400);
    assert!(pv["error"]["message"]
        .as_str()
        .unwrap()
        .contains("param 'q'"));

    assert_eq!(
        r["fields"],
        json!([{"name": "name", "type": "string"}, {"name": "v", "type": "number"}])
    );
    // Dry run: the request only, no upstream call.
    let hits_before = up.hits();
    let (_, dry) = call(
        &p,
        &ctx,
        "POST",
        "preview",
        json!({"rule": "items", "params": {"q": "a", "n": "1"}, "dryRun": true}),
    )
    .await;
    assert_eq!(dry["frames"], json!([]));
    assert!(dry["request"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/items?q=a&key=***"));
    assert_eq!(up.hits(), hits_before, "dry run does not call the upstream");
    // Unsaved jsonData can be previewed.
    let mut draft = jd();
    draft["rules"][0]["request"]["url"] = json!("/items?draft=1");
    let (_, pv) = call(
        &p,
        &ctx,
        "POST",
        "preview",
        json!({"rule": "items", "params": {"n": "1"}, "jsonData": draft, "dryRun": true}),
    )
    .await;
    assert!(
        pv["request"]["url"].as_str().unwrap().contains("draft=1"),
        "{pv}"
    );
    // One broken rule does not hide the others.
    let mut broken = jd();
    broken["rules"].as_array_mut().unwrap().push(json!({"id": "bad", "request": {"url": "/x"}, "response": {"fields": [{"name": "a", "path": "$[?"}]}}));
    let bctx = context("r2", &up.url(), &broken, &[("apiKey", SECRET)], 1);
    let (code, partial) = call(&p, &bctx, "GET", "rules", Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(partial["rules"][0]["id"], "items");
    assert_eq!(partial["problems"][0]["rule"], "bad");

    let (code, _) = call(&p, &ctx, "GET", "nope", Value::Null).await;
    assert_eq!(code, 404);
    let (code, _) = call(&p, &ctx, "DELETE", "rules", Value::Null).await;
    assert_eq!(code, 405);
}
