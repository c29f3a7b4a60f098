//! The gRPC services Grafana calls (protocol.md §1.6): `pluginv2.Data`,
//! `pluginv2.Diagnostics`, `grpc.health.v1` and go-plugin's `GRPCController`. This module is
//! the wire ↔ domain edge: nothing past it sees protobuf types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tonic::{Request, Response, Status};

use crate::error::QueryError;
use crate::instance::Instances;
use crate::pb::goplugin;
use crate::pb::pluginv2;
use crate::pipeline::{DataQuery, RequestContext};
use crate::settings::DataSourceSettings;

/// Largest request message accepted, bytes (protocol.md §2.9: SDK-Go accepts 16 MiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
/// Largest response message sent, bytes (Grafana receives up to 2 GiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024 * 1024;
/// Queries of one QueryData call that run at the same time.
pub const QUERY_CONCURRENCY: usize = 16;

/// The plugin's state shared by every service.
#[derive(Debug, Clone)]
pub struct Plugin {
    instances: Arc<Instances>,
    shutdown: watch::Sender<bool>,
}

impl Plugin {
    /// A plugin with no compiled instances; `shutdown` is set to `true` by
    /// `GRPCController/Shutdown`.
    pub fn new(shutdown: watch::Sender<bool>) -> Plugin {
        Plugin {
            instances: Arc::new(Instances::default()),
            shutdown,
        }
    }
}

/// `DataSourceInstanceSettings` → domain settings (protocol.md §2.3). Copies the settings;
/// QueryData, which owns its request, uses [`settings_from_pb_owned`].
pub fn settings_from_pb(ctx: Option<&pluginv2::PluginContext>) -> Option<DataSourceSettings> {
    let s = ctx?.data_source_instance_settings.clone()?;
    settings_from_instance(s)
}

/// [`settings_from_pb`] taking the context by value: jsonData and the decrypted secrets
/// move instead of being copied (QueryData's hot path).
pub fn settings_from_pb_owned(ctx: Option<pluginv2::PluginContext>) -> Option<DataSourceSettings> {
    settings_from_instance(ctx?.data_source_instance_settings?)
}

fn settings_from_instance(s: pluginv2::DataSourceInstanceSettings) -> Option<DataSourceSettings> {
    Some(DataSourceSettings {
        uid: s.uid,
        name: s.name,
        url: s.url,
        basic_auth_enabled: s.basic_auth_enabled,
        basic_auth_user: s.basic_auth_user,
        json_data: s.json_data,
        secure_json_data: s.decrypted_secure_json_data.into_iter().collect(),
        last_updated_ms: s.last_updated_ms,
    })
}

fn query_from_pb(q: pluginv2::DataQuery) -> DataQuery {
    let (from_ms, to_ms) = q
        .time_range
        .as_ref()
        .map_or((0, 0), |t| (t.from_epoch_ms, t.to_epoch_ms));
    DataQuery {
        ref_id: q.ref_id,
        json: q.json,
        from_ms,
        to_ms,
        interval_ms: q.interval_ms,
        max_data_points: q.max_data_points,
    }
}

/// Reads the `grpc-timeout` request header (gRPC over HTTP/2 spec: digits + unit
/// `H`/`M`/`S`/`m`/`u`/`n`).
pub fn grpc_timeout(meta: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let v = meta.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn error_response(e: &QueryError) -> pluginv2::DataResponse {
    pluginv2::DataResponse {
        error: e.to_string(),
        status: e.status(),
        error_source: e.source().as_str().to_owned(),
        ..Default::default()
    }
}

/// Runs one query to a DataResponse (frames encoded, or the error with status/source).
async fn answer(
    instances: Arc<Instances>,
    settings: Option<Arc<DataSourceSettings>>,
    query: DataQuery,
    ctx: RequestContext,
) -> pluginv2::DataResponse {
    let mut rule_label = "unknown".to_owned();
    let result = async {
        let settings = settings.ok_or_else(|| {
            QueryError::BadQuery("the request carries no datasource settings".into())
        })?;
        let compiled = instances.get_async(&settings).await;
        let instance = match compiled.as_ref() {
            Ok(i) => i,
            Err(e) => return Err(QueryError::Settings(e.to_string())),
        };
        let model = crate::pipeline::parse_model(&query.json)?;
        // Metric label: a configured rule id only (a query's free text would be unbounded).
        if instance.rules.contains_key(&model.rule) {
            model.rule.clone_into(&mut rule_label);
        }
        crate::pipeline::run_encoded(&compiled, model, &query, ctx).await
    }
    .await;
    crate::metrics::global().query(
        &rule_label,
        result.as_ref().map_or_else(QueryError::status, |_| 200),
    );
    match result {
        Ok(frames) => pluginv2::DataResponse {
            frames,
            status: 200,
            ..Default::default()
        },
        Err(e) => {
            tracing::debug!(ref_id = %query.ref_id, status = e.status(), error = %e, "Query failed.");
            error_response(&e)
        }
    }
}

#[tonic::async_trait]
impl pluginv2::data_server::Data for Plugin {
    async fn query_data(
        &self,
        request: Request<pluginv2::QueryDataRequest>,
    ) -> Result<Response<pluginv2::QueryDataResponse>, Status> {
        // Leave a margin before Grafana's deadline so a slow query becomes this refId's 504
        // (with the other refIds' answers) instead of the whole call being cancelled.
        let deadline = grpc_timeout(request.metadata()).map(|d| {
            let margin = (d / 10).max(std::time::Duration::from_millis(100));
            d.saturating_sub(margin)
        });
        let mut req = request.into_inner();
        let ctx = RequestContext::with_headers(deadline, &req.headers);
        let settings = settings_from_pb_owned(req.plugin_context.take()).map(Arc::new);
        if req.queries.len() == 1 {
            // One query (a panel's usual call, every alert rule's): run it in this handler
            // instead of a task of its own. Dropping the handler (Grafana cancelled) drops
            // it, and a panic is caught here, so it still becomes this refId's 500.
            if let Some(q) = req.queries.pop() {
                use futures_util::FutureExt;
                let query = query_from_pb(q);
                let ref_id = query.ref_id.clone();
                let run = answer(self.instances.clone(), settings, query, ctx);
                let resp = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                    Ok(r) => r,
                    Err(_) => failed_task(&ref_id, true),
                };
                let responses = HashMap::from([(ref_id, resp)]);
                return Ok(Response::new(pluginv2::QueryDataResponse { responses }));
            }
        }
        let limit = Arc::new(Semaphore::new(QUERY_CONCURRENCY));
        let mut tasks = Vec::with_capacity(req.queries.len());
        for q in req.queries {
            let query = query_from_pb(q);
            let ref_id = query.ref_id.clone();
            let instances = self.instances.clone();
            let settings = settings.clone();
            let limit = limit.clone();
            let ctx = ctx.clone();
            let handle = tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.ok();
                answer(instances, settings, query, ctx).await
            });
            tasks.push((ref_id, handle));
        }
        // If Grafana cancels the call, this handler is dropped: abort the queries (and so
        // their upstream requests) instead of letting them run to their timeouts.
        let _abort = AbortOnDrop(tasks.iter().map(|(_, h)| h.abort_handle()).collect());
        let mut responses = HashMap::with_capacity(tasks.len());
        for (ref_id, handle) in tasks {
            let resp = match handle.await {
                Ok(r) => r,
                Err(e) => failed_task(&ref_id, e.is_panic()),
            };
            responses.insert(ref_id, resp);
        }
        Ok(Response::new(pluginv2::QueryDataResponse { responses }))
    }

    type QueryChunkedDataStream =
        futures_util::stream::Empty<Result<pluginv2::QueryChunkedDataResponse, Status>>;

    async fn query_chunked_data(
        &self,
        _request: Request<pluginv2::QueryChunkedDataRequest>,
    ) -> Result<Response<Self::QueryChunkedDataStream>, Status> {
        // protocol.md §8 item 19: UNIMPLEMENTED makes newer Grafana fall back to QueryData.
        Err(Status::unimplemented(
            "QueryChunkedData is not implemented; use QueryData",
        ))
    }
}

/// The answer of a query that panicked (or whose task was cancelled): a 500 for its refId,
/// logged; the other refIds and the process are unaffected.
fn failed_task(ref_id: &str, panicked: bool) -> pluginv2::DataResponse {
    let why = if panicked {
        "the query panicked (a bug in RestBridge; the process keeps serving)"
    } else {
        "the query task was cancelled"
    };
    tracing::error!(ref_id = %ref_id, "Query task failed: {why}.");
    error_response(&QueryError::Internal(why.to_owned()))
}

/// Aborts the tasks it holds when dropped (finished tasks are unaffected).
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Runs CheckHealth for settings (also used by `gpx_restbridge check`).
pub async fn check_health(
    instances: &Instances,
    settings: Option<&DataSourceSettings>,
) -> (
    pluginv2::check_health_response::HealthStatus,
    String,
    serde_json::Value,
) {
    use pluginv2::check_health_response::HealthStatus;
    let Some(settings) = settings else {
        return (
            HealthStatus::Error,
            "the request carries no datasource settings".into(),
            serde_json::json!({}),
        );
    };
    let instance = instances.get_async(settings).await;
    let instance = match instance.as_ref() {
        Ok(i) => i,
        Err(e) => {
            return (
                HealthStatus::Error,
                format!("RestBridge: {e}"),
                serde_json::json!({}),
            )
        }
    };
    let ids = instance.rule_ids();
    let details = serde_json::json!({"rules": ids});
    if ids.is_empty() {
        return (
            HealthStatus::Ok,
            "RestBridge: settings are valid, but no rules are configured yet (add them under jsonData.rules)".into(),
            details,
        );
    }
    let loaded = format!(
        "RestBridge: {} rule{} loaded",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" }
    );
    let Some(hc) = &instance.health_check else {
        return (HealthStatus::Ok, loaded, details);
    };
    let params: serde_json::Map<String, serde_json::Value> = hc
        .params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_text())))
        .collect();
    let now = jiff::Timestamp::now().as_millisecond();
    let query = DataQuery {
        ref_id: "health".into(),
        from_ms: now - 3_600_000,
        to_ms: now,
        interval_ms: 60_000,
        max_data_points: 1000,
        ..DataQuery::default()
    };
    match crate::pipeline::run_rule(
        instance,
        &hc.rule,
        &params,
        &query,
        RequestContext::default(),
    )
    .await
    {
        Ok(frames) => {
            let rows: usize = frames.iter().map(crate::frame::Frame::rows).sum();
            (
                HealthStatus::Ok,
                format!(
                    "{loaded}; health check rule '{}' returned {} frame(s), {rows} row(s)",
                    hc.rule,
                    frames.len()
                ),
                details,
            )
        }
        Err(e) => (
            HealthStatus::Error,
            format!("{loaded}, but health check rule '{}' failed: {e}", hc.rule),
            details,
        ),
    }
}

#[tonic::async_trait]
impl pluginv2::diagnostics_server::Diagnostics for Plugin {
    async fn check_health(
        &self,
        request: Request<pluginv2::CheckHealthRequest>,
    ) -> Result<Response<pluginv2::CheckHealthResponse>, Status> {
        let req = request.into_inner();
        let settings = settings_from_pb(req.plugin_context.as_ref());
        let (status, message, details) = check_health(&self.instances, settings.as_ref()).await;
        tracing::debug!(status = ?status, message = %message, "CheckHealth.");
        Ok(Response::new(pluginv2::CheckHealthResponse {
            status: status as i32,
            message,
            json_details: details.to_string().into_bytes(),
        }))
    }

    async fn collect_metrics(
        &self,
        _request: Request<pluginv2::CollectMetricsRequest>,
    ) -> Result<Response<pluginv2::CollectMetricsResponse>, Status> {
        let metrics = crate::metrics::global();
        metrics.set_cache_bytes(self.instances.cache_bytes());
        Ok(Response::new(pluginv2::CollectMetricsResponse {
            metrics: Some(pluginv2::collect_metrics_response::Payload {
                prometheus: metrics.encode().into_bytes(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl pluginv2::resource_server::Resource for Plugin {
    type CallResourceStream = futures_util::stream::Once<
        futures_util::future::Ready<Result<pluginv2::CallResourceResponse, Status>>,
    >;

    async fn call_resource(
        &self,
        request: Request<pluginv2::CallResourceRequest>,
    ) -> Result<Response<Self::CallResourceStream>, Status> {
        let req = request.into_inner();
        let settings = settings_from_pb(req.plugin_context.as_ref());
        let (code, body) = crate::resources::handle(
            &self.instances,
            settings.as_ref(),
            &req.method,
            &req.path,
            &req.body,
        )
        .await;
        let mut headers = HashMap::new();
        headers.insert(
            "Content-Type".to_owned(),
            pluginv2::StringList {
                values: vec!["application/json".to_owned()],
            },
        );
        let resp = pluginv2::CallResourceResponse {
            code: i32::from(code),
            headers,
            body: body.to_string().into_bytes(),
        };
        Ok(Response::new(futures_util::stream::once(
            futures_util::future::ready(Ok(resp)),
        )))
    }
}

#[tonic::async_trait]
impl goplugin::grpc_controller_server::GrpcController for Plugin {
    async fn shutdown(
        &self,
        _request: Request<goplugin::Empty>,
    ) -> Result<Response<goplugin::Empty>, Status> {
        // protocol.md §9 item 25: answer at once, then exit.
        tracing::info!("Shutdown requested by the plugin host.");
        let _ = self.shutdown.send(true);
        Ok(Response::new(goplugin::Empty {}))
    }
}

/// Serves every service on `listener` until `shutdown` becomes true. Each accepted
/// connection's writes are gathered until h2 flushes ([`crate::conn::Gathered`]).
///
/// # Errors
/// The transport error that stopped the server.
pub async fn serve(
    listener: crate::handshake::Listener,
    plugin: Plugin,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // go-plugin checks service "plugin" (protocol.md §1.6).
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let data = pluginv2::data_server::DataServer::new(plugin.clone())
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let diagnostics = pluginv2::diagnostics_server::DiagnosticsServer::new(plugin.clone())
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let resource = pluginv2::resource_server::ResourceServer::new(plugin.clone())
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let data = crate::grpc_data::DataService::new(data, plugin.clone());
    let controller = goplugin::grpc_controller_server::GrpcControllerServer::new(plugin);
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(data)
        .add_service(diagnostics)
        .add_service(resource)
        .add_service(controller);
    let signal = async move {
        let _ = shutdown.wait_for(|v| *v).await;
    };
    match listener {
        crate::handshake::Listener::Tcp(l) => {
            use futures_util::StreamExt as _;
            let incoming = tonic::transport::server::TcpIncoming::from(l)
                .with_nodelay(Some(true))
                .map(|conn| conn.map(crate::conn::Gathered::new));
            router.serve_with_incoming_shutdown(incoming, signal).await
        }
        #[cfg(unix)]
        crate::handshake::Listener::Unix(l, path) => {
            let incoming = tokio_stream_unix(l);
            let r = router.serve_with_incoming_shutdown(incoming, signal).await;
            let _ = std::fs::remove_file(path);
            r
        }
    }
}

#[cfg(unix)]
fn tokio_stream_unix(
    l: tokio::net::UnixListener,
) -> impl futures_util::Stream<Item = std::io::Result<crate::conn::Gathered<tokio::net::UnixStream>>>
{
    futures_util::stream::unfold(l, |l| async move {
        let r = l.accept().await.map(|(s, _)| crate::conn::Gathered::new(s));
        Some((r, l))
    })
}
