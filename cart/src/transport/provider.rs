//! Provider names and quirks in one table (Mercury's `NA_OFI_PROV_TYPES`): every provider-specific
//! decision in the ofi transport reads this table instead of comparing strings.

/// A fabric provider known to cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `ofi+tcp;ofi_rxm` (default; `ofi+tcp` is accepted as its alias).
    TcpRxm,
    /// `ofi+shm` (same host only).
    Shm,
    /// `ofi+verbs;ofi_rxm` (compiles and is selectable; needs RDMA hardware).
    VerbsRxm,
}

/// Quirks and defaults of one provider.
#[derive(Debug, Clone, Copy)]
pub struct ProviderCaps {
    /// Which one.
    pub provider: Provider,
    /// The DAOS `D_PROVIDER` spelling.
    pub daos_name: &'static str,
    /// Other accepted spellings.
    pub aliases: &'static [&'static str],
    /// The libfabric provider name for `fabric_attr->prov_name`.
    pub fi_name: &'static str,
    /// The CQ supports `FI_WAIT_FD` (shm does not: poll with back-off).
    pub wait_fd: bool,
    /// Needs a node address + `FI_SOURCE` to bind (tcp: "127.0.0.1" for loopback, else the first NIC).
    pub source_node: bool,
    /// Listens on a port (`D_PORT` applies, consecutive per context).
    pub uses_port: bool,
    /// Default `D_INTERFACE`.
    pub default_interface: Option<&'static str>,
    /// The libfabric domain name to ask for when the interface is `lo` (tcp names domains by NIC).
    pub domain_is_interface: bool,
    /// Default `CART_BULK_INFLIGHT`: bulk transfers a context usefully keeps in progress at once
    /// (the self-test service sizes its buffer pool with it). shm moves RMA with
    /// `process_vm_readv`/`writev` on the initiator's own thread, one transfer at a time, so more
    /// buffers only spread the copies over more cold memory; tcp;ofi_rxm pipelines transfers on
    /// the socket. Measured here (1 MiB BULK_GET, 16 in flight, one source buffer, MiB/s): shm
    /// 1 buffer 18026, 2: 14512, 4: 13868, 16: 12786; tcp 1: 3715, 2: 6798, 4: 7727, 16: 6946.
    pub bulk_inflight: u32,
    /// Empty CQ polls the progress loop makes in a row before its bookkeeping and a pass through
    /// the scheduler. Where polling stays in user space (shm, verbs) a tighter poll notices a
    /// message sooner: shm, 8 B at 1 in flight, 16 polls gave 1.73-1.86 µs round trips against
    /// 1.80-1.89 µs with 1 (alternating runs). Over tcp;ofi_rxm an empty poll is a syscall, and 16
    /// in a row cut the rate of two servers sharing a core from 70.8k to 48.6k RPC/s.
    pub tight_polls: u32,
    /// Default `CART_POLL_PAUSES`: CPU pause hints (`spin_loop`, ~9 ns each here) before each of
    /// those polls. Over shm both sides poll the peer-visible state of their own shared region
    /// with an atomic compare-and-swap, and a sender writes that same region (its lock, command
    /// queue, signal): back-to-back polls keep pulling those cache lines away from the sender.
    /// Measured (8 B at 1 in flight, alternating runs): bare transport ping-pong 1.35 µs with no
    /// pause, 1.18-1.24 with 8-16; self_test 1.73-1.83 µs with none, 1.65-1.69 with 4, 1.59-1.70
    /// with 8, 1.65-1.71 with 16. tcp polls through a syscall and verbs reads CQ entries the NIC
    /// wrote: no pause.
    pub poll_pauses: u32,
}

/// The table. Order = preference when nothing is configured (first entry is the default).
pub const PROVIDERS: &[ProviderCaps] = &[
    ProviderCaps {
        provider: Provider::TcpRxm,
        daos_name: "ofi+tcp;ofi_rxm",
        aliases: &["ofi+tcp", "tcp", "tcp;ofi_rxm"],
        fi_name: "tcp;ofi_rxm",
        wait_fd: true,
        source_node: true,
        uses_port: true,
        default_interface: Some("lo"),
        domain_is_interface: true,
        bulk_inflight: 4,
        tight_polls: 1,
        poll_pauses: 0,
    },
    ProviderCaps {
        provider: Provider::Shm,
        daos_name: "ofi+shm",
        aliases: &["shm", "sm"],
        fi_name: "shm",
        wait_fd: false,
        source_node: false,
        uses_port: false,
        default_interface: None,
        domain_is_interface: false,
        bulk_inflight: 1,
        tight_polls: 16,
        poll_pauses: 8,
    },
    ProviderCaps {
        provider: Provider::VerbsRxm,
        daos_name: "ofi+verbs;ofi_rxm",
        aliases: &["ofi+verbs", "verbs;ofi_rxm"],
        fi_name: "verbs;ofi_rxm",
        wait_fd: true,
        source_node: true,
        uses_port: true,
        default_interface: None,
        domain_is_interface: false,
        // An RDMA NIC moves transfers on its own; not measured here (no hardware).
        bulk_inflight: 16,
        tight_polls: 16,
        poll_pauses: 0,
    },
];

impl Provider {
    /// Parses a `D_PROVIDER` string (DAOS spelling or alias).
    pub fn parse(s: &str) -> Option<Provider> {
        let s = s.trim();
        PROVIDERS
            .iter()
            .find(|c| c.daos_name == s || c.aliases.contains(&s))
            .map(|c| c.provider)
    }

    /// This provider's row of the table.
    pub fn caps(self) -> &'static ProviderCaps {
        PROVIDERS
            .iter()
            .find(|c| c.provider == self)
            .unwrap_or(&PROVIDERS[0])
    }

    /// The DAOS spelling.
    pub fn name(self) -> &'static str {
        self.caps().daos_name
    }
}

impl Default for Provider {
    fn default() -> Self {
        PROVIDERS[0].provider
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daos_spellings_and_aliases() {
        assert_eq!(Provider::parse("ofi+tcp;ofi_rxm"), Some(Provider::TcpRxm));
        assert_eq!(Provider::parse("ofi+tcp"), Some(Provider::TcpRxm));
        assert_eq!(Provider::parse("ofi+shm"), Some(Provider::Shm));
        assert_eq!(
            Provider::parse("ofi+verbs;ofi_rxm"),
            Some(Provider::VerbsRxm)
        );
        assert_eq!(Provider::parse("ofi+cxi"), None);
        assert_eq!(Provider::default(), Provider::TcpRxm);
        assert!(!Provider::Shm.caps().wait_fd);
    }
}
