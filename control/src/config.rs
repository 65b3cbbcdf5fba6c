//! `daos_server.yml`: the subset of DAOS's schema daos-rs honours (see `utils/config/daos_server.yml`
//! in DAOS). Unknown keys are refused so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use daos_common::{DaosErrno, Der};
use serde::{Deserialize, Serialize};

/// The embedded single-node default (DAOS `examples/daos_server_local.yml` shape: tcp, insecure, one
/// engine; here two targets, a tmpfs-like `ram` tier and a `file` bdev under /tmp).
pub const DEFAULT_LOCAL_YAML: &str = r#"# daos-rs single-node default
name: daos_server
port: 10001
provider: ofi+tcp;ofi_rxm
crt_timeout: 60
transport_config:
  allow_insecure: true
engines:
  - targets: 2
    nr_xs_helpers: 0
    first_core: 0
    fabric_iface: lo
    fabric_iface_port: 31416
    log_file: /tmp/daos_engine.0.log
    storage:
      - class: ram
        scm_mount: /dev/shm/daos-rs/scm0
        scm_size: 1
      - class: file
        bdev_list: [/tmp/daos-rs/bdev0]
        bdev_size: 4
"#;

/// Errors of configuration loading.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// YAML syntax or schema error (includes unknown keys).
    #[error("config {origin}: {message}")]
    Parse {
        /// File name or `<embedded>`.
        origin: String,
        /// What the parser said (with line and column).
        message: String,
    },
    /// A semantically invalid value.
    #[error("config {origin}: {message}")]
    Invalid {
        /// File name or `<embedded>`.
        origin: String,
        /// What is wrong, naming the field.
        message: String,
    },
}

impl DaosErrno for ConfigError {
    fn der(&self) -> Der {
        match self {
            ConfigError::Read { .. } => Der::Badpath,
            _ => Der::Inval,
        }
    }
}

/// `transport_config` of the control plane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    /// Run the management API without TLS.
    #[serde(default)]
    pub allow_insecure: bool,
}

/// Storage classes DAOS knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageClass {
    /// First tier in DRAM (tmpfs), MD-on-SSD mode.
    Ram,
    /// First tier on persistent memory.
    Dcpm,
    /// NVMe through SPDK (not available in daos-rs on this platform).
    Nvme,
    /// A regular file used as a block device (O_DIRECT).
    File,
    /// A kernel block device.
    Kdev,
}

impl StorageClass {
    fn is_scm(self) -> bool {
        matches!(self, StorageClass::Ram | StorageClass::Dcpm)
    }
}

/// One storage tier of an engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Storage class.
    pub class: StorageClass,
    /// SCM mount point (ram/dcpm).
    #[serde(default)]
    pub scm_mount: Option<PathBuf>,
    /// SCM size in GiB (ram).
    #[serde(default)]
    pub scm_size: Option<u64>,
    /// Block devices or files (file/kdev/nvme).
    #[serde(default)]
    pub bdev_list: Vec<PathBuf>,
    /// Size of each bdev file in GiB (file).
    #[serde(default)]
    pub bdev_size: Option<u64>,
}

/// One `engines[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Target xstreams (one vos each).
    pub targets: u32,
    /// Helper xstreams.
    #[serde(default)]
    pub nr_xs_helpers: u32,
    /// First core to pin to.
    #[serde(default)]
    pub first_core: Option<u32>,
    /// NUMA node to pin to (exclusive with `first_core`).
    #[serde(default)]
    pub pinned_numa_node: Option<u32>,
    /// Network interface for the fabric.
    #[serde(default = "default_iface")]
    pub fabric_iface: String,
    /// First fabric port; context `i` listens on `port + i`. Must not overlap another engine's range.
    pub fabric_iface_port: u16,
    /// Engine log file.
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// Engine log mask (`D_LOG_MASK`).
    #[serde(default)]
    pub log_mask: Option<String>,
    /// Extra environment for the engine.
    #[serde(default)]
    pub env_vars: Vec<String>,
    /// Storage tiers, SCM first.
    pub storage: Vec<Tier>,
}

fn default_iface() -> String {
    "lo".to_string()
}

fn default_name() -> String {
    "daos_server".to_string()
}

fn default_port() -> u16 {
    10001
}

fn default_provider() -> String {
    "ofi+tcp;ofi_rxm".to_string()
}

fn default_crt_timeout() -> u32 {
    60
}

/// A whole `daos_server.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// System (group) name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Management API port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Fabric provider (`D_PROVIDER`).
    #[serde(default = "default_provider")]
    pub provider: String,
    /// RPC timeout in seconds (`CRT_TIMEOUT`), in (0, 3600].
    #[serde(default = "default_crt_timeout")]
    pub crt_timeout: u32,
    /// Management service replicas.
    #[serde(default)]
    pub mgmt_svc_replicas: Vec<String>,
    /// TLS settings.
    #[serde(default)]
    pub transport_config: TransportConfig,
    /// Control-plane log file.
    #[serde(default)]
    pub control_log_file: Option<PathBuf>,
    /// Engines to start.
    pub engines: Vec<EngineConfig>,
}

/// Provider strings daos-rs accepts (DAOS spelling).
pub const PROVIDERS: &[&str] = &[
    "ofi+tcp;ofi_rxm",
    "ofi+tcp",
    "ofi+shm",
    "ofi+verbs;ofi_rxm",
    "ofi+verbs",
];

impl ServerConfig {
    /// Parses and validates YAML text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: ServerConfig = yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// The embedded single-node default.
    pub fn default_local() -> Self {
        Self::from_yaml(DEFAULT_LOCAL_YAML, "<embedded default>")
            .expect("the embedded default config is valid (checked by a unit test)")
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        };
        if !PROVIDERS.contains(&self.provider.as_str()) {
            return Err(bad(format!(
                "provider {:?} is not supported (one of: {})",
                self.provider,
                PROVIDERS.join(", ")
            )));
        }
        if self.crt_timeout == 0 || self.crt_timeout > 3600 {
            return Err(bad(format!(
                "crt_timeout {} out of range (1..=3600 s)",
                self.crt_timeout
            )));
        }
        if self.engines.is_empty() {
            return Err(bad("engines: at least one engine is required".into()));
        }
        let mut ports: BTreeMap<u32, usize> = BTreeMap::new();
        for (i, e) in self.engines.iter().enumerate() {
            if e.targets == 0 {
                return Err(bad(format!("engines[{i}].targets must be > 0")));
            }
            if e.first_core.is_some() && e.pinned_numa_node.is_some() {
                return Err(bad(format!(
                    "engines[{i}]: first_core and pinned_numa_node are mutually exclusive"
                )));
            }
            // Context c of the engine listens on fabric_iface_port + c.
            let contexts = 2 + e.targets + e.nr_xs_helpers;
            for c in 0..contexts {
                let p = u32::from(e.fabric_iface_port) + c;
                if p > u32::from(u16::MAX) {
                    return Err(bad(format!(
                        "engines[{i}].fabric_iface_port {} + {contexts} contexts exceeds 65535",
                        e.fabric_iface_port
                    )));
                }
                if let Some(j) = ports.insert(p, i) {
                    return Err(bad(format!(
                        "engines[{i}].fabric_iface_port {}: port {p} is also used by engines[{j}] \
                         (each engine needs {contexts} consecutive ports)",
                        e.fabric_iface_port
                    )));
                }
            }
            let Some(first) = e.storage.first() else {
                return Err(bad(format!("engines[{i}].storage is empty")));
            };
            if !first.class.is_scm() {
                return Err(bad(format!(
                    "engines[{i}].storage[0] must be class ram or dcpm, not {:?}",
                    first.class
                )));
            }
            for (t, tier) in e.storage.iter().enumerate() {
                if tier.class.is_scm() {
                    if t != 0 {
                        return Err(bad(format!(
                            "engines[{i}].storage[{t}]: only the first tier may be SCM"
                        )));
                    }
                    if tier.scm_mount.is_none() {
                        return Err(bad(format!(
                            "engines[{i}].storage[{t}].scm_mount is required"
                        )));
                    }
                } else if tier.bdev_list.is_empty() {
                    return Err(bad(format!("engines[{i}].storage[{t}].bdev_list is empty")));
                }
                if tier.class == StorageClass::Nvme {
                    return Err(bad(format!(
                        "engines[{i}].storage[{t}]: class nvme needs SPDK, which is not packaged for this \
                         platform; use class file or kdev"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Environment for engine `idx`, as DAOS's control plane derives it from the config.
    pub fn engine_env(&self, idx: usize) -> Option<Vec<(String, String)>> {
        let e = self.engines.get(idx)?;
        let mut env = vec![
            ("D_PROVIDER".to_string(), self.provider.clone()),
            ("D_INTERFACE".to_string(), e.fabric_iface.clone()),
            ("D_PORT".to_string(), e.fabric_iface_port.to_string()),
            ("CRT_TIMEOUT".to_string(), self.crt_timeout.to_string()),
        ];
        if let Some(m) = &e.log_mask {
            env.push(("D_LOG_MASK".to_string(), m.clone()));
        }
        for kv in &e.env_vars {
            if let Some((k, v)) = kv.split_once('=') {
                env.push((k.to_string(), v.to_string()));
            }
        }
        Some(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = ServerConfig::default_local();
        assert_eq!(c.name, "daos_server");
        assert_eq!(c.engines.len(), 1);
        assert_eq!(c.engines[0].storage[0].class, StorageClass::Ram);
        let env = c.engine_env(0).unwrap();
        assert!(env.contains(&("D_PROVIDER".into(), "ofi+tcp;ofi_rxm".into())));
        assert!(env.contains(&("D_PORT".into(), "31416".into())));
        assert!(c.engine_env(1).is_none());
    }

    fn with_engines(extra: &str) -> String {
        format!("name: s\nengines:\n{extra}")
    }

    const ENGINE0: &str = "  - targets: 2\n    fabric_iface_port: 31416\n    storage:\n      - class: ram\n        scm_mount: /mnt/a\n";

    #[test]
    fn overlapping_port_ranges_name_both_engines() {
        let y = with_engines(&format!(
            "{ENGINE0}  - targets: 1\n    fabric_iface_port: 31418\n    storage:\n      - class: ram\n        scm_mount: /mnt/b\n"
        ));
        let e = ServerConfig::from_yaml(&y, "t.yml").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("engines[1]") && s.contains("engines[0]") && s.contains("31418"),
            "{s}"
        );
        assert_eq!(e.der(), Der::Inval);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let typo = with_engines(&ENGINE0.replace("targets", "target"));
        assert!(ServerConfig::from_yaml(&typo, "t.yml").is_err());
        let nvme = with_engines(&format!(
            "{ENGINE0}      - class: nvme\n        bdev_list: [\"0000:81:00.0\"]\n"
        ));
        let e = ServerConfig::from_yaml(&nvme, "t.yml").unwrap_err();
        assert!(e.to_string().contains("SPDK"), "{e}");
        let prov = format!("provider: ofi+psm2\n{}", with_engines(ENGINE0));
        let e = ServerConfig::from_yaml(&prov, "t.yml").unwrap_err();
        assert!(e.to_string().contains("ofi+psm2"), "{e}");
        let bdev_first = with_engines(
            "  - targets: 1\n    fabric_iface_port: 1\n    storage:\n      - class: file\n        bdev_list: [/x]\n",
        );
        assert!(ServerConfig::from_yaml(&bdev_first, "t.yml").is_err());
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = ServerConfig::load(Path::new("/nonexistent/daos_server.yml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/daos_server.yml"));
        assert_eq!(e.der(), Der::Badpath);
    }
}
