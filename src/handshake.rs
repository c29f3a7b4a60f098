//! The go-plugin side of the process contract (protocol.md §1): magic cookie, listener
//! choice (a unix socket by default, TCP on request) and the `1|2|NETWORK|ADDR|grpc`
//! handshake line.

use std::path::PathBuf;

/// Environment key of go-plugin's magic cookie (protocol.md §1.2).
pub const MAGIC_COOKIE_KEY: &str = "grafana_plugin_type";
/// Value of the magic cookie.
pub const MAGIC_COOKIE_VALUE: &str = "datasource";
/// go-plugin core protocol version (protocol.md §1.3 field 1).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// Grafana's app protocol version (protocol.md §1.3 field 2).
pub const APP_PROTOCOL_VERSION: u32 = 2;

/// True when the process was started by a go-plugin host (the magic cookie is set).
pub fn started_by_grafana() -> bool {
    std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE)
}

/// Checks `PLUGIN_PROTOCOL_VERSIONS` (comma list; absent = accept).
///
/// # Errors
/// A message when the host does not offer protocol version 2.
pub fn check_protocol_versions(value: Option<&str>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) if v.trim().is_empty() => Ok(()),
        Some(v) => {
            if v.split(',').any(|x| x.trim() == "2") {
                Ok(())
            } else {
                Err(format!(
                    "the plugin host offers protocol versions '{v}', but RestBridge speaks only version {APP_PROTOCOL_VERSION}"
                ))
            }
        }
    }
}

/// Environment variable that forces the transport: `tcp` (loopback TCP, what the Rust SDK
/// does) or `unix` (the default on Unix-like systems).
pub const NETWORK_ENV: &str = "RESTBRIDGE_GRPC_NETWORK";

/// Which transport to listen on (protocol.md §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenOn {
    /// `127.0.0.1` with a port chosen by the OS.
    Tcp,
    /// A unix socket named `plugin<digits>` in this directory.
    UnixIn(PathBuf),
}

impl ListenOn {
    /// The transport a go-plugin host expects from this process, from the environment:
    ///
    /// * `PLUGIN_UNIX_SOCKET_DIR` set (container mode, protocol.md §1.1) → a unix socket there;
    /// * else `RESTBRIDGE_GRPC_NETWORK=tcp` → TCP on 127.0.0.1;
    /// * else, on Unix-like systems, a unix socket in the system temp directory (`TMPDIR`),
    ///   as go-plugin's own Go server does (protocol.md §1.4); on Windows, TCP.
    ///
    /// Why a unix socket by default: the same QueryData costs the plugin less CPU (no
    /// TCP/IP stack on loopback: measured in docs/benchmarks-load.md), and only processes
    /// that may open the file can connect, where any local user can reach a TCP port.
    pub fn from_env() -> ListenOn {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(dir) = var("PLUGIN_UNIX_SOCKET_DIR") {
            return ListenOn::UnixIn(PathBuf::from(dir));
        }
        match var(NETWORK_ENV).as_ref().and_then(|v| v.to_str()) {
            Some("tcp") => ListenOn::Tcp,
            _ if cfg!(unix) => ListenOn::UnixIn(std::env::temp_dir()),
            _ => ListenOn::Tcp,
        }
    }
}

/// Where the gRPC server listens.
#[derive(Debug)]
pub enum Listener {
    /// `127.0.0.1:PORT`.
    Tcp(tokio::net::TcpListener),
    /// A unix socket (the default on Unix-like systems; container mode, protocol.md §1.1).
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, PathBuf),
}

/// The unix socket this process created, removed again by [`remove_socket_file`].
static SOCKET_PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Removes the unix socket file this process listens on, if any (at shutdown, also when
/// the process exits without returning from the server). Safe to call more than once.
pub fn remove_socket_file() {
    if let Some(p) = SOCKET_PATH.get() {
        let _ = std::fs::remove_file(p);
    }
}

impl Listener {
    /// Binds before the handshake is printed (protocol.md §8 item 28): a unix socket named
    /// `plugin<pid><nanos>` in the given directory, or TCP on 127.0.0.1 with an OS port.
    ///
    /// # Errors
    /// The I/O error of the bind.
    pub async fn bind(on: ListenOn) -> std::io::Result<Listener> {
        match on {
            ListenOn::Tcp => Ok(Listener::Tcp(
                tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
            )),
            #[cfg(unix)]
            ListenOn::UnixIn(dir) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let path = dir.join(format!("plugin{}{nanos}", std::process::id()));
                let l = tokio::net::UnixListener::bind(&path)?;
                let _ = SOCKET_PATH.set(path.clone());
                Ok(Listener::Unix(l, path))
            }
            #[cfg(not(unix))]
            ListenOn::UnixIn(_) => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "unix sockets need a Unix-like system",
            )),
        }
    }

    /// The handshake line (without newline), e.g. `1|2|unix|/tmp/plugin123|grpc` or
    /// `1|2|tcp|127.0.0.1:41234|grpc` (protocol.md §1.3; the 6th field stays absent, §9
    /// item 24).
    ///
    /// # Errors
    /// The I/O error when the local address cannot be read.
    pub fn handshake_line(&self) -> std::io::Result<String> {
        let (network, addr) = match self {
            Listener::Tcp(l) => ("tcp", l.local_addr()?.to_string()),
            #[cfg(unix)]
            Listener::Unix(_, p) => ("unix", p.display().to_string()),
        };
        Ok(format_line(network, &addr))
    }
}

/// Formats `CORE|APP|NETWORK|ADDR|grpc`.
pub fn format_line(network: &str, addr: &str) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|{network}|{addr}|grpc")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn line_shape() {
        assert_eq!(
            format_line("tcp", "127.0.0.1:5"),
            "1|2|tcp|127.0.0.1:5|grpc"
        );
    }

    #[test]
    fn protocol_versions() {
        assert!(check_protocol_versions(None).is_ok());
        assert!(check_protocol_versions(Some("2")).is_ok());
        assert!(check_protocol_versions(Some("1, 2")).is_ok());
        let e = check_protocol_versions(Some("1,3")).unwrap_err();
        assert!(e.contains("'1,3'"), "{e}");
    }

    #[tokio::test]
    async fn binds_loopback_tcp_and_unix() {
        let l = Listener::bind(ListenOn::Tcp).await.unwrap();
        let line = l.handshake_line().unwrap();
        assert!(line.starts_with("1|2|tcp|127.0.0.1:"), "{line}");
        let dir = std::env::temp_dir();
        let l = Listener::bind(ListenOn::UnixIn(dir.clone())).await.unwrap();
        let line = l.handshake_line().unwrap();
        assert!(
            line.starts_with(&format!("1|2|unix|{}/plugin", dir.display())),
            "{line}"
        );
        if let Listener::Unix(_, p) = l {
            let _ = std::fs::remove_file(p);
        }
    }
}
