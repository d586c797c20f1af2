//! `scmi-vhost-user`: serves the SCMI server to a QEMU guest as a
//! vhost-user back-end for `-device vhost-user-scmi` (virtio-mmio) or
//! `-device vhost-user-scmi-pci`.
//!
//! One socket is one virtio-scmi device, which is one SCMI agent. The
//! daemon serves one QEMU at a time and stays up when it goes away: the
//! next QEMU (or the next boot) connects to the same socket. SIGINT or
//! SIGTERM removes the socket and exits with status 0.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform_sim::DEFAULT_CONFIG;
use platform_sim::SimPlatform;
use scmi_server::{Config, Server};
use transport_vhost_user::{ServeOptions, VhostUserDevice, serve, sys};
use virtio_backend::spec::features;
use virtio_scmi::{Options, VirtioScmi};

const USAGE: &str = "\
usage: scmi-vhost-user --socket-path PATH [--agent N] [--manifest FILE] [--tick-ms MS]

Serves the SCMI server as a vhost-user back-end (virtio-scmi, device id 32) on
the Unix socket PATH, for QEMU's `-device vhost-user-scmi` (virtio-mmio) or
`-device vhost-user-scmi-pci`. Serves one QEMU at a time and waits for the
next one when it disconnects; SIGINT/SIGTERM remove the socket and exit 0.

  -s, --socket-path PATH  Unix socket to listen on (a stale socket file is
                          replaced; anything else there is an error)
  --agent N               the SCMI agent this device is (default 1)
  --manifest FILE         platform manifest (.dts or .dtb, e.g.
                          manifests/host-vhost-user.dts) with the agents and
                          SCMI resources to serve; default: the built-in
                          simulated platform
  --tick-ms MS            let time pass on the platform every MS milliseconds
                          (sensors move, periodic events fire; default 100);
                          0: no timer, time passes when the guest sends a
                          request (no CPU use while idle; sensor
                          notifications fire only then)
  -h, --help              this text

QEMU side (guest memory must be shared with the daemon):
  -object memory-backend-memfd,id=mem,size=512M,share=on -machine memory-backend=mem
  -chardev socket,id=scmi,path=PATH
  -device vhost-user-scmi,chardev=scmi -global virtio-mmio.force-legacy=false";

/// Largest queue the driver may configure; QEMU's vhost-user-scmi asks for
/// 256 entries per queue.
const MAX_QUEUE: u16 = 1024;

#[derive(Debug, PartialEq, Eq)]
struct Args {
    socket: PathBuf,
    agent: u32,
    manifest: Option<PathBuf>,
    tick_ms: u64,
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{name}: `{v}` is not a valid number"))
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut socket = None;
    let mut agent = 1;
    let mut manifest = None;
    let mut tick_ms = 100;
    while let Some(arg) = it.next() {
        // `--name=value` as well as `--name value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "-s" | "--socket-path" => socket = Some(PathBuf::from(value()?)),
            "--agent" => agent = number("--agent", &value()?)?,
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--tick-ms" => tick_ms = number("--tick-ms", &value()?)?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let socket = socket.ok_or("--socket-path PATH is required")?;
    if agent == 0 {
        return Err("--agent: agent ids start at 1".into());
    }
    Ok(Some(Args {
        socket,
        agent,
        manifest,
        tick_ms,
    }))
}

/// The SCMI configuration and platform to serve: from the manifest when one
/// is given (validated by the `manifest` crate; errors name the file and the
/// node), otherwise the built-in simulated platform and the two-agent
/// default configuration of `scmi-host`.
fn load_config(path: Option<&Path>) -> Result<(&'static Config, SimPlatform), String> {
    match path {
        None => Ok((&DEFAULT_CONFIG, SimPlatform::default())),
        Some(p) => manifest::load_server_parts(p).map_err(|e| format!("--manifest: {e}")),
    }
}

type Scmi = VirtioScmi<Server<SimPlatform, 8, 32>>;

fn run(args: Args) -> Result<(), String> {
    // Before anything else (and before any thread exists): SIGINT/SIGTERM
    // become readable events on this descriptor.
    let signals =
        sys::termination_signalfd().map_err(|e| format!("cannot set up signal handling: {e}"))?;
    let (config, platform) = load_config(args.manifest.as_deref())?;
    let server: Server<SimPlatform, 8, 32> = Server::new(config, platform);
    let agents = server.agent_count();
    if args.agent > agents {
        return Err(format!(
            "--agent {}: the configuration has agents 1..={agents}",
            args.agent
        ));
    }
    let opts = Options {
        p2a: true,
        // What QEMU's vhost-user-scmi passes through to the guest.
        ring_features: features::INDIRECT_DESC | features::EVENT_IDX,
        cmdq_size: MAX_QUEUE,
        eventq_size: MAX_QUEUE,
    };
    let device: Scmi = VirtioScmi::with_options(server, args.agent, opts);
    let dev = Arc::new(Mutex::new(VhostUserDevice::<Scmi, 2>::new(device)));
    let listener = partition_host::bind_socket(&args.socket)?;
    eprintln!(
        "scmi-vhost-user: serving SCMI agent {} ({}) on {}",
        args.agent,
        config
            .agents
            .get(args.agent as usize - 1)
            .map_or("?", |a| a.name),
        args.socket.display()
    );
    let start = Instant::now();
    let mut on_tick = |d: &mut Scmi| {
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        d.backend_mut().tick(ms);
    };
    let serve_opts = ServeOptions {
        tick: (args.tick_ms > 0).then(|| Duration::from_millis(args.tick_ms)),
        stop: Some(signals.as_raw_fd()),
    };
    let r = serve(&listener, &dev, &serve_opts, &mut on_tick);
    if let Some(sig) = sys::read_signal(&signals) {
        eprintln!("scmi-vhost-user: signal {sig}, shutting down");
    }
    let _ = std::fs::remove_file(&args.socket);
    r.map_err(|e| format!("serving {} failed: {e}", args.socket.display()))
}

fn main() -> ExitCode {
    partition_host::cli_main(
        "scmi-vhost-user",
        USAGE,
        parse(std::env::args().skip(1)),
        run,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use scmi_server::protocols::clock::ClockPlatform;

    fn args(v: &[&str]) -> Result<Option<Args>, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_vhost_device_style_options() {
        let a = args(&["--socket-path", "/tmp/s", "--agent", "2"])
            .unwrap()
            .unwrap();
        assert_eq!(a.socket, PathBuf::from("/tmp/s"));
        assert_eq!(a.agent, 2);
        assert_eq!(a.tick_ms, 100);
        let b = args(&["-s", "/tmp/t", "--tick-ms=5"]).unwrap().unwrap();
        assert_eq!(b.socket, PathBuf::from("/tmp/t"));
        assert_eq!(b.tick_ms, 5);
        assert_eq!(args(&["--help"]).unwrap(), None);
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(args(&[]).unwrap_err().contains("--socket-path"));
        assert!(args(&["-s"]).unwrap_err().contains("needs a value"));
        assert!(
            args(&["-s", "x", "--agent", "two"])
                .unwrap_err()
                .contains("two")
        );
        assert!(args(&["-s", "x", "--agent", "0"]).is_err());
        let c = args(&["-s", "x", "--tick-ms", "0"]).unwrap().unwrap();
        assert_eq!(c.tick_ms, 0, "0: time on demand");
        assert!(
            args(&["-s", "x", "--bogus"])
                .unwrap_err()
                .contains("--bogus")
        );
    }

    #[test]
    fn manifest_configures_the_server_and_bad_ones_are_named() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let (config, platform) =
            load_config(Some(&repo.join("manifests/host-vhost-user.dts"))).unwrap();
        assert_eq!(config.agents.len(), DEFAULT_CONFIG.agents.len());
        assert_eq!(
            platform.clocks().len(),
            SimPlatform::default().clocks().len()
        );
        let e = load_config(Some(Path::new("/nonexistent/m.dts"))).unwrap_err();
        assert!(e.contains("/nonexistent/m.dts"), "{e}");
        let e = load_config(Some(Path::new("/dev/null"))).unwrap_err();
        assert!(e.contains("/dev/null"), "{e}");
    }
}
