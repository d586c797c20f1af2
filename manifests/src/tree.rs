//! An owned copy of a flattened device tree, and typed property readers
//! whose errors name the node path and the property.
//!
//! The blob is parsed with `dtoolkit` (validated as a whole by
//! `Fdt::new`); everything after that works on this copy.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use dtoolkit::fdt::Fdt;
use dtoolkit::{Node as _, Property as _};

/// A problem at one node: its path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeError {
    /// Node path, `/` for the root.
    pub node: String,
    /// What is wrong.
    pub message: String,
}

impl core::fmt::Display for NodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.node, self.message)
    }
}

/// Shorthand for results of this module.
pub type Res<T> = Result<T, NodeError>;

/// One node: its full path, properties in blob order, and children.
#[derive(Debug, Clone)]
pub struct Node {
    /// Full path (`/`, `/scmi/clocks/clock@3`).
    pub path: String,
    /// Name with unit address (`clock@3`; empty for the root).
    pub name: String,
    /// Properties: name and raw value.
    pub props: Vec<(String, Vec<u8>)>,
    /// Child nodes.
    pub children: Vec<Node>,
}

/// Parses a DTB into an owned tree.
pub fn from_dtb(dtb: &[u8]) -> Res<Node> {
    let fdt = Fdt::new(dtb).map_err(|e| NodeError {
        node: String::new(),
        message: format!("not a valid flattened device tree: {e}"),
    })?;
    Ok(copy(&fdt.root(), "/"))
}

fn copy(n: &dtoolkit::fdt::FdtNode<'_>, path: &str) -> Node {
    let name = n.name().to_string();
    let props = n
        .properties()
        .map(|p| (p.name().to_string(), p.value().to_vec()))
        .collect();
    let children = n
        .children()
        .map(|c| {
            let cname = c.name();
            let cpath = if path == "/" {
                format!("/{cname}")
            } else {
                format!("{path}/{cname}")
            };
            copy(&c, &cpath)
        })
        .collect();
    Node {
        path: path.to_string(),
        name,
        props,
        children,
    }
}

impl Node {
    /// An error at this node.
    pub fn err<T>(&self, message: impl Into<String>) -> Res<T> {
        Err(NodeError {
            node: self.path.clone(),
            message: message.into(),
        })
    }

    /// An error about property `prop` of this node.
    pub fn prop_err<T>(&self, prop: &str, message: impl core::fmt::Display) -> Res<T> {
        self.err(format!("property \"{prop}\": {message}"))
    }

    /// The node name without its unit address.
    pub fn base_name(&self) -> &str {
        self.name.split('@').next().unwrap_or("")
    }

    /// Rejects every property not in `allowed` (the format is closed: a
    /// misspelt property must not be silently ignored).
    pub fn only(&self, allowed: &[&str]) -> Res<()> {
        for (p, _) in &self.props {
            if !allowed.contains(&p.as_str()) {
                return self.err(format!(
                    "unknown property \"{p}\" (allowed here: {})",
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Rejects every child whose base name is not in `allowed`.
    pub fn only_children(&self, allowed: &[&str]) -> Res<()> {
        for c in &self.children {
            if !allowed.contains(&c.base_name()) {
                return self.err(format!(
                    "unknown node \"{}\" (allowed here: {})",
                    c.name,
                    if allowed.is_empty() {
                        String::from("none")
                    } else {
                        allowed.join(", ")
                    }
                ));
            }
        }
        Ok(())
    }

    /// The child called exactly `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The raw value of `prop`.
    pub fn raw(&self, prop: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == prop)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether `prop` is present.
    pub fn has(&self, prop: &str) -> bool {
        self.raw(prop).is_some()
    }

    /// A property that must be present.
    pub fn required<T>(&self, prop: &str, v: Option<T>) -> Res<T> {
        match v {
            Some(v) => Ok(v),
            None => self.err(format!("missing required property \"{prop}\"")),
        }
    }

    /// An empty (flag) property: present or not.
    pub fn flag(&self, prop: &str) -> Res<bool> {
        match self.raw(prop) {
            None => Ok(false),
            Some([]) => Ok(true),
            Some(v) => self.prop_err(
                prop,
                format_args!("is a flag and takes no value, found {} bytes", v.len()),
            ),
        }
    }

    /// A list of 32-bit cells.
    pub fn u32s(&self, prop: &str) -> Res<Option<Vec<u32>>> {
        let Some(v) = self.raw(prop) else {
            return Ok(None);
        };
        if v.len() % 4 != 0 {
            return self.prop_err(
                prop,
                format_args!("expected 32-bit cells, found {} bytes", v.len()),
            );
        }
        Ok(Some(
            v.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// A list of 64-bit values (`/bits/ 64 <...>`, or pairs of cells).
    pub fn u64s(&self, prop: &str) -> Res<Option<Vec<u64>>> {
        let Some(v) = self.raw(prop) else {
            return Ok(None);
        };
        if v.len() % 8 != 0 {
            return self.prop_err(
                prop,
                format_args!(
                    "expected 64-bit values (/bits/ 64 <...>), found {} bytes",
                    v.len()
                ),
            );
        }
        Ok(Some(
            v.chunks_exact(8)
                .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ))
    }

    /// Exactly one 32-bit cell.
    pub fn u32(&self, prop: &str) -> Res<Option<u32>> {
        match self.u32s(prop)? {
            None => Ok(None),
            Some(v) if v.len() == 1 => Ok(Some(v[0])),
            Some(v) => self.prop_err(
                prop,
                format_args!("expected one 32-bit cell, found {} bytes", v.len() * 4),
            ),
        }
    }

    /// Exactly one signed 32-bit cell (`<(-3)>`).
    pub fn s32(&self, prop: &str) -> Res<Option<i32>> {
        Ok(self.u32(prop)?.map(|v| v as i32))
    }

    /// Exactly one 64-bit value.
    pub fn u64(&self, prop: &str) -> Res<Option<u64>> {
        match self.u64s(prop)? {
            None => Ok(None),
            Some(v) if v.len() == 1 => Ok(Some(v[0])),
            Some(v) => self.prop_err(
                prop,
                format_args!("expected one 64-bit value, found {} bytes", v.len() * 8),
            ),
        }
    }

    /// A list of NUL-terminated strings.
    pub fn strings(&self, prop: &str) -> Res<Option<Vec<String>>> {
        let Some(v) = self.raw(prop) else {
            return Ok(None);
        };
        let Some((&0, body)) = v.split_last() else {
            return self.prop_err(prop, "expected a string (\"...\")");
        };
        let mut out = Vec::new();
        for s in body.split(|&b| b == 0) {
            match core::str::from_utf8(s) {
                Ok(s) if s.is_ascii() => out.push(s.to_string()),
                _ => return self.prop_err(prop, "expected ASCII text"),
            }
        }
        Ok(Some(out))
    }

    /// Exactly one string.
    pub fn string(&self, prop: &str) -> Res<Option<String>> {
        match self.strings(prop)? {
            None => Ok(None),
            Some(mut v) if v.len() == 1 => Ok(v.pop()),
            Some(v) => self.prop_err(prop, format_args!("expected one string, found {}", v.len())),
        }
    }

    /// The `reg` of a resource node, which must equal its unit address.
    pub fn reg(&self) -> Res<u32> {
        let reg = self.required("reg", self.u32("reg")?)?;
        let unit = self.name.split_once('@').map(|(_, u)| u);
        let ok = unit.and_then(|u| u32::from_str_radix(u, 16).ok()) == Some(reg);
        if !ok {
            return self.prop_err(
                "reg",
                format_args!(
                    "<{reg}> does not match the unit address of \"{}\"",
                    self.name
                ),
            );
        }
        Ok(reg)
    }
}
