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
use platform_sim::SimPlatform;
use scmi_server::{Config, Server};
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

/// One device of a manifest's `/virtio` node: device id, transport, agent,
/// queue sizes (cmdq, then eventq), P2A channels.
type VirtioNode<'a> = (u32, &'a str, u32, &'a [u32], bool);

/// The built-in manifest's `/virtio` devices.
fn builtin_devices() -> impl Iterator<Item = VirtioNode<'static>> {
    builtin::VIRTIO
        .iter()
        .map(|d| (d.device_id, d.transport, d.agent, d.queue_sizes, d.p2a))
}

/// A loaded manifest's `/virtio` devices.
fn manifest_devices(m: &manifest::Manifest) -> impl Iterator<Item = VirtioNode<'_>> {
    m.virtio.iter().map(|d| {
        (
            d.device_id,
            d.transport.as_str(),
            d.agent,
            d.queue_sizes.as_slice(),
            d.p2a,
        )
    })
}

/// The options of the vhost-user virtio-scmi device for `agent` among
/// `devices` (the first one): its queue sizes and P2A channels. `file`
/// names the manifest in errors.
fn device_for<'a>(
    mut devices: impl Iterator<Item = VirtioNode<'a>>,
    agent: u32,
    file: &str,
) -> Result<Options, String> {
    let (_, _, _, sizes, p2a) = devices
        .find(|&(id, transport, a, _, _)| {
            id == virtio_scmi::DEVICE_ID && transport == "vhost-user" && a == agent
        })
        .ok_or_else(|| {
            format!(
                "--agent {agent}: {file}: /virtio: no vhost-user virtio-scmi device (device-id 32) for agent {agent}"
            )
        })?;
    let size = |i: usize| -> Result<u16, String> {
        let q = sizes.get(i).copied().unwrap_or(0);
        u16::try_from(q)
            .ok()
            .filter(|&q| q > 0)
            .ok_or_else(|| format!("{file}: /virtio: queue {i} has size {q}"))
    };
    Ok(Options {
        p2a,
        // What QEMU's vhost-user-scmi passes through to the guest.
        ring_features: features::INDIRECT_DESC | features::EVENT_IDX,
        cmdq_size: size(0)?,
        eventq_size: if p2a { size(1)? } else { 0 },
    })
}

fn run(args: Args) -> Result<(), String> {
    // Before anything else (and before any thread exists): SIGINT/SIGTERM
    // become readable events on this descriptor.
    let signals = partition_host::termination_signalfd()
        .map_err(|e| format!("cannot set up signal handling: {e}"))?;
    let (config, platform, opts) = match args.manifest.as_deref() {
        // The built-in SoC: generated from manifests/host-vhost-user.dts
        // (served by the same platform type as a loaded manifest).
        None => {
            let file = "built-in manifest (manifests/host-vhost-user.dts)";
            let opts = device_for(builtin_devices(), args.agent, file)?;
            let platform =
                SimPlatform::new(&builtin::TABLES).map_err(|e| format!("{file}: {e}"))?;
            (&builtin::CONFIG, platform, opts)
        }
        Some(path) => {
            let file = path.display().to_string();
            let m = manifest::load(path).map_err(|e| format!("--manifest: {e}"))?;
            let opts = device_for(manifest_devices(&m), args.agent, &file)?;
            let (config, platform) = m
                .into_server_parts()
                .map_err(|e| format!("--manifest: {e}"))?;
            (config, platform, opts)
        }
    };
    serve_platform(&args, &signals, config, platform, opts)
}

/// Serves agent `args.agent` of `config` over `platform` until a signal.
fn serve_platform(
    args: &Args,
    signals: &std::os::fd::OwnedFd,
    config: &'static Config,
    platform: SimPlatform,
    opts: Options,
) -> Result<(), String> {
    type Scmi = VirtioScmi<Server<SimPlatform, 8, 32>>;
    let server: Server<SimPlatform, 8, 32> = Server::new(config, platform);
    let agents = server.agent_count();
    if args.agent > agents {
        return Err(format!(
            "--agent {}: the configuration has agents 1..={agents}",
            args.agent
        ));
    }
    let device: Scmi = VirtioScmi::with_options(server, args.agent, opts);
    let dev = Arc::new(Mutex::new(VhostUserDevice::<Scmi, 2>::new(device)));
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
        let builtin = |agent| device_for(builtin_devices(), agent, "builtin");
        let opts = builtin(2).unwrap();
        assert!(opts.p2a);
        let sizes = builtin::VIRTIO[1].queue_sizes;
        assert_eq!(
            (u32::from(opts.cmdq_size), u32::from(opts.eventq_size)),
            (sizes[0], sizes[1])
        );
        let e = builtin(3).unwrap_err();
        assert!(
            e.contains("builtin: /virtio") && e.contains("agent 3"),
            "{e}"
        );
        // A device without P2A channels has no eventq; one of another
        // transport or type is not ours; the first match counts.
        let q = [64u32];
        let q2 = [128u32];
        let list = [
            (32, "vhost-user", 1, &q[..], false),
            (32, "virtio-msg", 2, &q[..], true),
            (3, "vhost-user", 2, &q[..], true),
            (32, "vhost-user", 1, &q2[..], false),
        ];
        let opts = device_for(list.iter().copied(), 1, "m.dts").unwrap();
        assert_eq!((opts.p2a, opts.cmdq_size, opts.eventq_size), (false, 64, 0));
        assert!(device_for(list.iter().copied(), 2, "m.dts").is_err());
        // A size that is no virtqueue size is named.
        let zero = [0u32];
        let e = device_for(
            [(32, "vhost-user", 1, &zero[..], false)].into_iter(),
            1,
            "m.dts",
        )
        .unwrap_err();
        assert!(e.contains("m.dts: /virtio: queue 0 has size 0"), "{e}");
        // The manifest the daemon is shipped with agrees with the built-in.
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let m = manifest::load(repo.join("manifests/host-vhost-user.dts")).unwrap();
        let loaded = device_for(manifest_devices(&m), 2, "host-vhost-user.dts").unwrap();
        assert_eq!(loaded, builtin(2).unwrap());
    }
}
