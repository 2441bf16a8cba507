//! The catalogue of capability interfaces: every interface of the `mcpssh:plugin` package
//! a tool may import and a user may grant, with its name (as grant files and the WIT
//! package spell it), what it lets a tool do (for the hints the host advertises) and its
//! registration in the linker. Its host side is `host/<interface>.rs`. Adding an
//! interface means adding a variant here and its host file.

use std::borrow::Borrow;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::mcpssh::plugin as wit;
use super::state::CallState;

/// The WIT package every capability interface belongs to.
pub const PACKAGE: &str = "mcpssh:plugin";

/// The WIT interface of the package that holds the data types the others share; every
/// component may import it, so it is never granted.
const SHARED_TYPES: &str = "types";

/// A grantable interface of the `mcpssh:plugin` package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Opening, inspecting and closing SSH sessions.
    Session,
    /// Running commands and jobs on the remote host.
    Exec,
    /// Reading remote file system metadata.
    RemoteRead,
    /// Changing the remote file system (besides transfers).
    RemoteWrite,
    /// Moving whole files between the local machine and the remote host.
    Transfer,
    /// Reading local file system metadata.
    LocalRead,
    /// Logging and progress reporting.
    HostLog,
}

/// What a component's import of the `mcpssh:plugin` package names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageImport {
    /// The shared data types, which every component may import.
    SharedTypes,
    /// A capability interface.
    Capability(Capability),
    /// An interface the host does not provide, by name without version.
    Unknown(String),
}

impl Capability {
    /// Every capability, in the order messages list them.
    pub const ALL: [Capability; 7] = [
        Capability::Session,
        Capability::Exec,
        Capability::HostLog,
        Capability::RemoteRead,
        Capability::RemoteWrite,
        Capability::Transfer,
        Capability::LocalRead,
    ];

    /// The name in grant files, which is the WIT interface's name (without package and
    /// version).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Session => "session",
            Capability::Exec => "exec",
            Capability::RemoteRead => "remote-read",
            Capability::RemoteWrite => "remote-write",
            Capability::Transfer => "transfer",
            Capability::LocalRead => "local-read",
            Capability::HostLog => "host-log",
        }
    }

    /// The capability a grant file or an import names, if any.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether a tool importing it can change things: run commands, write or remove
    /// remote files, transfer files either way.
    pub fn can_change(self) -> bool {
        matches!(
            self,
            Capability::Exec | Capability::RemoteWrite | Capability::Transfer
        )
    }

    /// Whether a tool importing it reaches a remote host.
    pub fn reaches_remote(self) -> bool {
        !matches!(self, Capability::LocalRead | Capability::HostLog)
    }

    /// Adds the host side of this interface to `linker`.
    fn add_to_linker(self, linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        type D = HasSelf<CallState>;
        match self {
            Capability::Session => wit::session::add_to_linker::<CallState, D>(linker, |s| s),
            Capability::Exec => wit::exec::add_to_linker::<CallState, D>(linker, |s| s),
            Capability::RemoteRead => {
                wit::remote_read::add_to_linker::<CallState, D>(linker, |s| s)
            }
            Capability::RemoteWrite => {
                wit::remote_write::add_to_linker::<CallState, D>(linker, |s| s)
            }
            Capability::Transfer => wit::transfer::add_to_linker::<CallState, D>(linker, |s| s),
            Capability::LocalRead => wit::local_read::add_to_linker::<CallState, D>(linker, |s| s),
            Capability::HostLog => wit::host_log::add_to_linker::<CallState, D>(linker, |s| s),
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability borrows as its name, so a list of them joins like a list of names.
impl Borrow<str> for Capability {
    fn borrow(&self) -> &str {
        self.name()
    }
}

/// What the import `import_name` of a component names in the `mcpssh:plugin` package;
/// none for an import of another package (WASI).
pub fn package_import(import_name: &str) -> Option<PackageImport> {
    let rest = import_name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    let interface = rest.split('@').next().unwrap_or(rest);
    Some(if interface == SHARED_TYPES {
        PackageImport::SharedTypes
    } else {
        match Capability::from_name(interface) {
            Some(capability) => PackageImport::Capability(capability),
            None => PackageImport::Unknown(interface.to_string()),
        }
    })
}

/// Adds the shared types and every capability interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wit::types::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)?;
    for capability in Capability::ALL {
        capability.add_to_linker(linker)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_imports_find_their_capability() {
        for capability in Capability::ALL {
            assert_eq!(Capability::from_name(capability.name()), Some(capability));
            let import = format!("{PACKAGE}/{capability}@0.1.0");
            assert_eq!(
                package_import(&import),
                Some(PackageImport::Capability(capability))
            );
        }
        assert_eq!(Capability::from_name("types"), None);
        assert_eq!(Capability::from_name("root-shell"), None);
        assert_eq!(
            package_import("mcpssh:plugin/types@0.1.0"),
            Some(PackageImport::SharedTypes)
        );
        assert_eq!(
            package_import("mcpssh:plugin/root-shell@0.1.0"),
            Some(PackageImport::Unknown("root-shell".into()))
        );
        assert_eq!(package_import("wasi:io/poll@0.2.6"), None);
        assert_eq!(package_import("mcpssh:pluginx/exec"), None);
    }

    #[test]
    fn a_list_of_capabilities_reads_as_their_names() {
        let list = [Capability::RemoteRead, Capability::HostLog];
        assert_eq!(list.join(", "), "remote-read, host-log");
    }
}
