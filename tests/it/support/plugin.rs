//! Spawns the real `gpx_restbridge` binary exactly as Grafana's go-plugin client does
//! (protocol.md §1): go-plugin environment, a working directory that is not the plugin's,
//! the first stdout line parsed as the handshake, then a gRPC connection.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use restbridge::pb::goplugin::grpc_controller_client::GrpcControllerClient;
use restbridge::pb::pluginv2::data_client::DataClient;
use restbridge::pb::pluginv2::diagnostics_client::DiagnosticsClient;
use restbridge::pb::pluginv2::{self, DataSourceInstanceSettings, PluginContext};
use tonic::transport::{Channel, Endpoint};

/// A spawned plugin process with its gRPC clients; killed (SIGKILL) when dropped if still alive.
pub struct PluginProcess {
    pub child: Child,
    pub handshake: String,
    pub channel: Channel,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub stdout_rest: Arc<Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for PluginProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PluginProcess(pid {}, {})",
            self.child.id(),
            self.handshake
        )
    }
}

fn read_first_line(stdout: &mut ChildStdout) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = stdout.read(&mut byte)?;
        if n == 0 || byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > 4096 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

impl PluginProcess {
    /// Spawns with go-plugin's env (+ `extra_env`) and connects.
    pub async fn spawn(extra_env: &[(&str, &str)]) -> PluginProcess {
        let exe = env!("CARGO_BIN_EXE_gpx_restbridge");
        let mut cmd = Command::new(exe);
        cmd.current_dir(std::env::temp_dir())
            .env_remove("PLUGIN_UNIX_SOCKET_DIR")
            .env_remove("RESTBRIDGE_GRPC_NETWORK")
            .env("grafana_plugin_type", "datasource")
            .env("PLUGIN_PROTOCOL_VERSIONS", "2")
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("RESTBRIDGE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gpx_restbridge");
        let mut stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let rest = Arc::new(Mutex::new(Vec::new()));
        let rest_sink = rest.clone();
        std::thread::spawn(move || {
            let first = read_first_line(&mut stdout);
            let _ = tx.send(first);
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            rest_sink.lock().unwrap().extend(buf);
        });
        let handshake = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("handshake within 60 s")
            .expect("read stdout");
        let parts: Vec<&str> = handshake.trim().split('|').collect();
        assert!(parts.len() >= 5, "bad handshake line {handshake:?}");
        assert_eq!(parts[0], "1", "core protocol version");
        assert_eq!(parts[1], "2", "app protocol version");
        assert_eq!(parts[4], "grpc", "protocol");
        let channel = match parts[2] {
            "tcp" => Endpoint::from_shared(format!("http://{}", parts[3]))
                .unwrap()
                .connect()
                .await
                .expect("dial tcp"),
            "unix" => {
                let path = parts[3].to_owned();
                Endpoint::from_static("http://unused")
                    .connect_with_connector(UnixConnector { path })
                    .await
                    .expect("dial unix")
            }
            other => panic!("unknown network {other}"),
        };
        PluginProcess {
            child,
            handshake,
            channel,
            stderr: lines,
            stdout_rest: rest,
        }
    }

    pub fn data(&self) -> DataClient<Channel> {
        DataClient::new(self.channel.clone()).max_decoding_message_size(1 << 30)
    }

    /// One QueryData call with `queries` for the datasource `ctx`; panics on a gRPC error.
    pub async fn query_data(
        &self,
        ctx: PluginContext,
        queries: Vec<pluginv2::DataQuery>,
    ) -> pluginv2::QueryDataResponse {
        self.data()
            .query_data(pluginv2::QueryDataRequest {
                plugin_context: Some(ctx),
                queries,
                ..Default::default()
            })
            .await
            .expect("QueryData")
            .into_inner()
    }

    pub fn diagnostics(&self) -> DiagnosticsClient<Channel> {
        DiagnosticsClient::new(self.channel.clone())
    }

    pub fn controller(&self) -> GrpcControllerClient<Channel> {
        GrpcControllerClient::new(self.channel.clone())
    }

    /// Waits up to `limit` for the process to exit; returns the exit status and the time taken.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Clone)]
struct UnixConnector {
    path: String,
}

impl tonic::codegen::Service<tonic::transport::Uri> for UnixConnector {
    type Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: tonic::transport::Uri) -> Self::Future {
        let path = self.path.clone();
        Box::pin(async move {
            let s = tokio::net::UnixStream::connect(path).await?;
            Ok(hyper_util::rt::TokioIo::new(s))
        })
    }
}

/// PluginContext for a datasource with `url`, `json_data` and secrets.
pub fn context(
    uid: &str,
    url: &str,
    json_data: &serde_json::Value,
    secrets: &[(&str, &str)],
    last_updated_ms: i64,
) -> PluginContext {
    PluginContext {
        org_id: 1,
        plugin_id: "restbridge-rest-datasource".into(),
        data_source_instance_settings: Some(DataSourceInstanceSettings {
            name: format!("ds {uid}"),
            url: url.into(),
            json_data: serde_json::to_vec(json_data).unwrap(),
            decrypted_secure_json_data: secrets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            last_updated_ms,
            uid: uid.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A DataQuery for `rule` with `params` over [from_ms, to_ms].
pub fn query(
    ref_id: &str,
    rule: &str,
    params: serde_json::Value,
    from_ms: i64,
    to_ms: i64,
) -> pluginv2::DataQuery {
    pluginv2::DataQuery {
        ref_id: ref_id.into(),
        max_data_points: 1000,
        interval_ms: 15_000,
        time_range: Some(pluginv2::TimeRange {
            from_epoch_ms: from_ms,
            to_epoch_ms: to_ms,
        }),
        json: serde_json::to_vec(&serde_json::json!({
            "refId": ref_id, "datasource": {"type": "restbridge-rest-datasource"},
            "rule": rule, "params": params
        }))
        .unwrap(),
        query_type: String::new(),
    }
}
