//! Reading manifest files: `.dtb` as they are, anything else through `dtc`.

use std::path::Path;
use std::process::Command;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, fs};

use crate::{Error, Manifest, parse_dtb};
use platform_sim::SimPlatform;
use scmi_server::config::Config;

fn file_error(path: &Path, message: String) -> Error {
    Error {
        file: path.display().to_string(),
        node: String::new(),
        message,
    }
}

/// Compiles a device-tree source file to a blob with `dtc`. Warnings are
/// errors: every one of them points at a real mistake in a manifest
/// (a unit address without `reg`, a misplaced cell count, ...). The one
/// check left out is `interrupts_property`: the FF-A manifest binding's
/// `interrupts` (device regions, virtio devices) are `<id attributes>`
/// pairs of GIC INTIDs, not specifiers for an `interrupt-parent`.
pub fn compile(path: &Path) -> Result<Vec<u8>, Error> {
    let out = Command::new("dtc")
        .args(["-W", "no-interrupts_property"])
        .args(["-I", "dts", "-O", "dtb", "-o", "-"])
        .arg(path)
        .output()
        .map_err(|e| {
            file_error(
                path,
                format!(
                    "cannot run dtc ({e}); install the Debian package device-tree-compiler \
                     (scripts/setup-host.sh tools)"
                ),
            )
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        return Err(file_error(path, format!("dtc: {}", stderr.trim())));
    }
    Ok(out.stdout)
}

/// Loads and validates the manifest at `path` (`.dtb`: a compiled blob;
/// anything else: device-tree source, compiled with `dtc`).
pub fn load(path: impl AsRef<Path>) -> Result<Manifest, Error> {
    let path = path.as_ref();
    let dtb = if path.extension().is_some_and(|e| e == "dtb") {
        fs::read(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?
    } else {
        if !path.exists() {
            return Err(file_error(path, "no such file".to_string()));
        }
        compile(path)?
    };
    parse_dtb(&dtb, &path.display().to_string())
}

/// Loads the manifest at `path` and builds the server from it: the
/// configuration (leaked, `'static`) and a simulated platform serving the
/// manifest's resources. Meant for daemon start.
pub fn load_server_parts(path: impl AsRef<Path>) -> Result<(&'static Config, SimPlatform), Error> {
    load(path)?.into_server_parts()
}
