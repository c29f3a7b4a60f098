//! A stub upstream on 127.0.0.1 that counts requests: routes answer with a fixed status,
//! headers, body and optional delay. Stops when dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

/// One canned answer.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Route {
    pub fn json(body: &str) -> Route {
        Route {
            status: 200,
            body: body.as_bytes().to_vec(),
            content_type: "application/json",
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    pub fn status(mut self, s: u16) -> Route {
        self.status = s;
        self
    }

    pub fn delay(mut self, d: Duration) -> Route {
        self.delay = d;
        self
    }

    pub fn content_type(mut self, c: &'static str) -> Route {
        self.content_type = c;
        self
    }
}

/// What the stub saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Route>>,
    seen: Mutex<Vec<Seen>>,
    hits: AtomicUsize,
}

pub struct Stub {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Stub {
    /// Starts the stub on the current tokio runtime.
    pub async fn start(routes: Vec<(&str, Route)>) -> Stub {
        let state = Arc::new(State::default());
        {
            let mut r = state.routes.lock().unwrap();
            for (p, route) in routes {
                r.insert(p.to_owned(), route);
            }
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let st = st.clone();
                        tokio::spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
                        });
                    }
                }
            }
        });
        Stub {
            addr,
            state,
            stop: Some(tx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn set(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), route);
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(
    st: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    st.hits.fetch_add(1, Ordering::SeqCst);
    let method = req.method().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    st.seen.lock().unwrap().push(Seen {
        method,
        path_and_query,
        headers,
        body,
    });
    let route = st.routes.lock().unwrap().get(&path).cloned();
    let route =
        route.unwrap_or_else(|| Route::json(r#"{"error":"no such stub route"}"#).status(404));
    if !route.delay.is_zero() {
        tokio::time::sleep(route.delay).await;
    }
    let mut resp = Response::new(Full::new(Bytes::from(route.body.clone())));
    *resp.status_mut() = hyper::StatusCode::from_u16(route.status).unwrap();
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(route.content_type),
    );
    for (k, v) in &route.headers {
        resp.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    Ok(resp)
}
