//! Helpers shared by the `http_paging` tests: running queries through the spawned plugin,
//! reading frames, notices and errors, and a programmable stub upstream ([`FnStub`]) whose
//! answer depends on the request (page number in the body, cookies, login counting).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use restbridge::pb::pluginv2::{self, DataResponse, PluginContext};
use serde_json::Value;

use crate::support::arrow::{decode, DecodedFrame};
use crate::support::plugin::{query, PluginProcess};

/// Fixed range of every query (the upstreams here ignore time).
pub const FROM: i64 = 1_704_067_200_000;
pub const TO: i64 = 1_704_070_800_000;

/// Runs `queries` (`(refId, rule, params)`) as one QueryData request; returns the responses.
pub async fn run(
    plugin: &PluginProcess,
    ctx: &PluginContext,
    queries: &[(&str, &str, Value)],
) -> HashMap<String, DataResponse> {
    plugin
        .data()
        .query_data(pluginv2::QueryDataRequest {
            plugin_context: Some(ctx.clone()),
            queries: queries
                .iter()
                .map(|(r, rule, p)| query(r, rule, p.clone(), FROM, TO))
                .collect(),
            ..Default::default()
        })
        .await
        .expect("QueryData gRPC call")
        .into_inner()
        .responses
}

/// Runs one query and returns its response.
pub async fn run_one(
    plugin: &PluginProcess,
    ctx: &PluginContext,
    rule: &str,
    params: Value,
) -> DataResponse {
    run(plugin, ctx, &[("A", rule, params)])
        .await
        .remove("A")
        .expect("a response for refId A")
}

/// The decoded frames of a successful response (panics with the error otherwise).
pub fn frames(resp: &DataResponse) -> Vec<DecodedFrame> {
    assert!(
        resp.error.is_empty(),
        "query failed: status {} ({}): {}",
        resp.status,
        resp.error_source,
        resp.error
    );
    resp.frames.iter().map(|f| decode(f)).collect()
}

/// The single frame of a successful response.
pub fn one_frame(resp: &DataResponse) -> DecodedFrame {
    let mut f = frames(resp);
    assert_eq!(f.len(), 1, "expected one frame, got {}", f.len());
    f.remove(0)
}

/// Notice texts of all frames.
pub fn notices(frames: &[DecodedFrame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| f.meta.as_ref()?.get("notices")?.as_array().cloned())
        .flatten()
        .filter_map(|n| n.get("text")?.as_str().map(str::to_owned))
        .collect()
}

/// `meta.executedQueryString` of the first frame.
pub fn executed(frames: &[DecodedFrame]) -> String {
    frames
        .first()
        .and_then(|f| f.meta.as_ref()?.get("executedQueryString")?.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A field's values as i64 (ints or whole numbers).
pub fn ints(frame: &DecodedFrame, field: &str) -> Vec<i64> {
    frame
        .field(field)
        .values
        .iter()
        .map(|v| {
            v.as_i64()
                .unwrap_or_else(|| panic!("{field}: {v} is not an int"))
        })
        .collect()
}

/// A field's values as strings.
pub fn strings(frame: &DecodedFrame, field: &str) -> Vec<String> {
    frame
        .field(field)
        .values
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{field}: {v} is not a string"))
                .to_owned()
        })
        .collect()
}

/// One request as the [`FnStub`] saw it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A stub answer.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(v: &Value) -> Resp {
        Resp {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string(),
        }
    }

    pub fn status(mut self, s: u16) -> Resp {
        self.status = s;
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A stub upstream on 127.0.0.1 that answers with a function of the request and records
/// every request. Stops when dropped.
pub struct FnStub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Req>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FnStub {
    pub async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> FnStub {
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let handler = handler.clone();
                        let seen = seen2.clone();
                        tokio::spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let svc = hyper::service::service_fn(move |req| {
                                handle(handler.clone(), seen.clone(), req)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, svc)
                                .await;
                        });
                    }
                }
            }
        });
        FnStub {
            addr,
            seen,
            stop: Some(tx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests to `path`.
    pub fn seen_at(&self, path: &str) -> Vec<Req> {
        self.seen().into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for FnStub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(
    handler: Arc<Handler>,
    seen: Arc<Mutex<Vec<Req>>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let r = Req {
        method,
        path,
        query,
        headers,
        body,
    };
    seen.lock().unwrap().push(r.clone());
    let out = handler(&r);
    let mut resp = Response::new(Full::new(Bytes::from(out.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(out.status).unwrap();
    for (k, v) in &out.headers {
        resp.headers_mut().append(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    Ok(resp)
}
