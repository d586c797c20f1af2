//! `scmi-host`: serves the simulated SCMI platform over a Unix socket.
//!
//! Each connection is one agent; frames are a little-endian `u32` length
//! followed by a raw SCMI message (see `transport_scmi_socket`). The built-in
//! configuration has two agents.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use platform_host_vhost_user as builtin;
use scmi_server::Server;
use transport_scmi_socket::{Agents, Host, HostOptions};

const USAGE: &str = "\
usage: scmi-host --socket PATH [--agent N] [--tick-ms MS]

Serves the simulated SCMI platform on the Unix socket PATH. Frames are a
little-endian u32 length followed by one raw SCMI message; the server answers
each command with one frame, then writes notifications and delayed responses.

  --socket PATH   Unix socket to listen on (a stale socket file is replaced)
  --agent N       every connection is agent N (1 or 2), one at a time;
                  default: each connection gets the lowest free agent id
  --tick-ms MS    let time pass on the platform every MS milliseconds
                  (default 100; 0 never)
  --help          this text";

struct Args {
    socket: PathBuf,
    agent: Option<u32>,
    tick_ms: u64,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut socket = None;
    let mut agent = None;
    let mut tick_ms = 100;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            "--agent" => {
                let v = value("--agent")?;
                agent = Some(
                    v.parse::<u32>()
                        .map_err(|_| format!("--agent: `{v}` is not a number"))?,
                );
            }
            "--tick-ms" => {
                let v = value("--tick-ms")?;
                tick_ms = v
                    .parse::<u64>()
                    .map_err(|_| format!("--tick-ms: `{v}` is not a number"))?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let socket = socket.ok_or("--socket PATH is required")?;
    Ok(Some(Args {
        socket,
        agent,
        tick_ms,
    }))
}

fn run(args: Args) -> Result<(), String> {
    let server: Server<builtin::Platform, 2, 32> = Server::new(&builtin::CONFIG, builtin::PLATFORM);
    let agents = server.agent_count();
    let opts = HostOptions {
        agents: match args.agent {
            Some(a) if a == 0 || a > agents => {
                return Err(format!(
                    "--agent {a}: the built-in configuration has agents 1..={agents}"
                ));
            }
            Some(a) => Agents::Fixed(a),
            None => Agents::PerConnection,
        },
        tick: (args.tick_ms > 0).then(|| Duration::from_millis(args.tick_ms)),
        ..HostOptions::default()
    };
    let host = Host::new(server, opts).map_err(|e| e.to_string())?;
    let listener = partition_host::bind_socket(&args.socket)?;
    eprintln!(
        "scmi-host: serving SCMI on {} ({})",
        args.socket.display(),
        match args.agent {
            Some(a) => format!("agent {a}"),
            None => format!("agents 1..={agents}, one per connection"),
        }
    );
    host.serve(&listener)
        .map_err(|e| format!("accepting connections failed: {e}"))
}

fn main() -> ExitCode {
    partition_host::cli_main("scmi-host", USAGE, parse(std::env::args().skip(1)), run)
}
