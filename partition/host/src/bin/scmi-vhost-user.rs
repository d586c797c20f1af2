//! `scmi-vhost-user`: serves the SCMI server to a QEMU guest as a
//! vhost-user back-end for `-device vhost-user-scmi` (virtio-mmio) or
//! `-device vhost-user-scmi-pci`.
//!
//! One socket is one virtio-scmi device, which is one SCMI agent. The
//! daemon serves one QEMU at a time and stays up when it goes away: the
//! next QEMU (or the next boot) connects to the same socket. SIGINT or
//! SIGTERM removes the socket and exits with status 0.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform_host_vhost_user as builtin;
use scmi_server::{Config, Platform, Server};
use transport_vhost_user::{ServeOptions, VhostUserDevice, serve};
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

/// The virtio-scmi device of the manifest's `/virtio` node that this
/// daemon is: its queue sizes and whether it has P2A channels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceSpec {
    /// cmdq, then eventq when `p2a`.
    queue_sizes: Vec<u32>,
    p2a: bool,
}

/// Picks the vhost-user virtio-scmi device for `agent` out of a manifest's
/// `/virtio` node: `(device id, transport, agent, queue sizes, p2a)` per
/// device.
fn device_for<'a>(
    devices: impl Iterator<Item = (u32, &'a str, u32, &'a [u32], bool)>,
    agent: u32,
    file: &str,
) -> Result<DeviceSpec, String> {
    let mut found = None;
    for (id, transport, a, queue_sizes, p2a) in devices {
        if id == virtio_scmi::DEVICE_ID && transport == "vhost-user" && a == agent {
            found = Some(DeviceSpec {
                queue_sizes: queue_sizes.to_vec(),
                p2a,
            });
        }
    }
    found.ok_or_else(|| {
        format!(
            "--agent {agent}: {file}: /virtio: no vhost-user virtio-scmi device (device-id 32) for agent {agent}"
        )
    })
}

/// [`device_for`] over a loaded manifest's `/virtio` node.
fn manifest_device(m: &manifest::Manifest, agent: u32, file: &str) -> Result<DeviceSpec, String> {
    let devices = m.virtio.iter().map(|d| {
        (
            d.device_id,
            d.transport.as_str(),
            d.agent,
            d.queue_sizes.as_slice(),
            d.p2a,
        )
    });
    device_for(devices, agent, file)
}

/// Queue sizes of `spec` as device options.
fn options(spec: &DeviceSpec, file: &str) -> Result<Options, String> {
    let size = |i: usize| -> Result<u16, String> {
        let q = spec.queue_sizes.get(i).copied().unwrap_or(0);
        u16::try_from(q)
            .ok()
            .filter(|&q| q > 0)
            .ok_or_else(|| format!("{file}: /virtio: queue {i} has size {q}"))
    };
    Ok(Options {
        p2a: spec.p2a,
        // What QEMU's vhost-user-scmi passes through to the guest.
        ring_features: features::INDIRECT_DESC | features::EVENT_IDX,
        cmdq_size: size(0)?,
        eventq_size: if spec.p2a { size(1)? } else { 0 },
    })
}

fn run(args: Args) -> Result<(), String> {
    // Before anything else (and before any thread exists): SIGINT/SIGTERM
    // become readable events on this descriptor.
    let signals = partition_host::termination_signalfd()
        .map_err(|e| format!("cannot set up signal handling: {e}"))?;
    match args.manifest.as_deref() {
        // The built-in SoC: generated from manifests/host-vhost-user.dts.
        None => {
            let file = "built-in manifest (manifests/host-vhost-user.dts)";
            let spec = device_for(
                builtin::VIRTIO
                    .iter()
                    .map(|d| (d.device_id, d.transport, d.agent, d.queue_sizes, d.p2a)),
                args.agent,
                file,
            )?;
            let opts = options(&spec, file)?;
            serve_platform(&args, &signals, &builtin::CONFIG, builtin::PLATFORM, opts)
        }
        Some(path) => {
            let file = path.display().to_string();
            let m = manifest::load(path).map_err(|e| format!("--manifest: {e}"))?;
            let spec = manifest_device(&m, args.agent, &file)?;
            let opts = options(&spec, &file)?;
            let (config, platform) = m
                .into_server_parts()
                .map_err(|e| format!("--manifest: {e}"))?;
            serve_platform(&args, &signals, config, platform, opts)
        }
    }
}

/// Serves agent `args.agent` of `config` over `platform` until a signal.
fn serve_platform<P: Platform>(
    args: &Args,
    signals: &std::os::fd::OwnedFd,
    config: &'static Config,
    platform: P,
    opts: Options,
) -> Result<(), String> {
    type Scmi<P> = VirtioScmi<Server<P, 8, 32>>;
    let server: Server<P, 8, 32> = Server::new(config, platform);
    let agents = server.agent_count();
    if args.agent > agents {
        return Err(format!(
            "--agent {}: the configuration has agents 1..={agents}",
            args.agent
        ));
    }
    let device: Scmi<P> = VirtioScmi::with_options(server, args.agent, opts);
    let dev = Arc::new(Mutex::new(VhostUserDevice::<Scmi<P>, 2>::new(device)));
    let listener = partition_host::bind_socket(&args.socket)?;
    eprintln!(
        "scmi-vhost-user: serving SCMI agent {} ({}) on {} (queues {}/{}, P2A channels {})",
        args.agent,
        config
            .agents
            .get(args.agent as usize - 1)
            .map_or("?", |a| a.name),
        args.socket.display(),
        opts.cmdq_size,
        opts.eventq_size,
        if opts.p2a { "on" } else { "off" },
    );
    let start = Instant::now();
    let mut clock = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let serve_opts = ServeOptions {
        tick: (args.tick_ms > 0).then(|| Duration::from_millis(args.tick_ms)),
        stop: Some(signals.as_raw_fd()),
    };
    let r = serve(&listener, &dev, &serve_opts, &mut clock);
    if let Some(sig) = partition_host::read_signal(signals) {
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
    use std::path::Path;

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
    fn the_virtio_node_sets_queues_and_p2a_and_missing_devices_are_named() {
        let builtin = |agent| {
            device_for(
                builtin::VIRTIO
                    .iter()
                    .map(|d| (d.device_id, d.transport, d.agent, d.queue_sizes, d.p2a)),
                agent,
                "builtin",
            )
        };
        let spec = builtin(2).unwrap();
        let opts = options(&spec, "builtin").unwrap();
        assert!(opts.p2a);
        assert_eq!(
            (u32::from(opts.cmdq_size), u32::from(opts.eventq_size)),
            (spec.queue_sizes[0], spec.queue_sizes[1])
        );
        let e = builtin(3).unwrap_err();
        assert!(
            e.contains("builtin: /virtio") && e.contains("agent 3"),
            "{e}"
        );
        // A device without P2A channels has no eventq; one of another
        // transport or type is not ours.
        let q = [64u32];
        let list = [
            (32, "vhost-user", 1, &q[..], false),
            (32, "virtio-msg", 2, &q[..], true),
            (3, "vhost-user", 2, &q[..], true),
        ];
        let spec = device_for(list.iter().copied(), 1, "m.dts").unwrap();
        let opts = options(&spec, "m.dts").unwrap();
        assert_eq!((opts.p2a, opts.cmdq_size, opts.eventq_size), (false, 64, 0));
        assert!(device_for(list.iter().copied(), 2, "m.dts").is_err());
        // The manifest the daemon is shipped with agrees with the built-in.
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let m = manifest::load(repo.join("manifests/host-vhost-user.dts")).unwrap();
        let loaded = manifest_device(&m, 2, "host-vhost-user.dts").unwrap();
        assert_eq!(loaded, builtin(2).unwrap());
    }
}
