//! The go-plugin side of the process contract (protocol.md §1): magic cookie, listener
//! choice and the `1|2|tcp|ADDR|grpc` handshake line.

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

/// Where the gRPC server listens.
#[derive(Debug)]
pub enum Listener {
    /// `127.0.0.1:PORT`.
    Tcp(tokio::net::TcpListener),
    /// A unix socket in `PLUGIN_UNIX_SOCKET_DIR` (container mode, protocol.md §1.1).
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    /// Binds before the handshake is printed (protocol.md §8 item 28): a unix socket named
    /// `plugin<digits>` in `socket_dir` when given, else TCP on 127.0.0.1 with an OS port.
    ///
    /// # Errors
    /// The I/O error of the bind.
    pub async fn bind(socket_dir: Option<PathBuf>) -> std::io::Result<Listener> {
        #[cfg(unix)]
        if let Some(dir) = socket_dir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = dir.join(format!("plugin{}{nanos}", std::process::id()));
            let l = tokio::net::UnixListener::bind(&path)?;
            return Ok(Listener::Unix(l, path));
        }
        #[cfg(not(unix))]
        let _ = socket_dir;
        Ok(Listener::Tcp(
            tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
        ))
    }

    /// The handshake line (without newline), e.g. `1|2|tcp|127.0.0.1:41234|grpc`
    /// (protocol.md §1.3; the 6th field stays absent, §9 item 24).
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
        let l = Listener::bind(None).await.unwrap();
        let line = l.handshake_line().unwrap();
        assert!(line.starts_with("1|2|tcp|127.0.0.1:"), "{line}");
        let dir = std::env::temp_dir();
        let l = Listener::bind(Some(dir.clone())).await.unwrap();
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
