//! `gpx_restbridge`: started by Grafana (go-plugin magic cookie set) it serves the plugin
//! protocol; started by hand it is the command-line tool (`query`, `check`, `demo`).

use std::process::ExitCode;

fn main() -> ExitCode {
    if restbridge::handshake::started_by_grafana() {
        restbridge::plugin::main()
    } else {
        restbridge::cli::main()
    }
}
