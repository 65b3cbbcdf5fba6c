//! Typed configuration with one documented override layer: every field is optional; a field set in
//! code beats the environment (`D_PROVIDER`, `D_INTERFACE`, `D_DOMAIN`, `D_PORT`, `CRT_TIMEOUT`,
//! `CRT_CREDIT_EP_CTX`, `CART_SPIN_US`, `CART_SPIN_BURST_US`, `CART_INLINE_LIMIT`, `CART_RECV_COUNT`,
//! `CART_BULK_INFLIGHT`, `D_QUOTA_RPCS`),
//! which beats the defaults.

use std::time::Duration;

use crate::error::CartError;
use crate::transport::Provider;

/// DAOS `DAOS_BULK_LIMIT`: bodies above this travel as bulk.
pub const DEFAULT_INLINE_LIMIT: usize = 19 * 1024;
/// DAOS `CRT_TIMEOUT` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// DAOS `CRT_CREDIT_EP_CTX` default: RPCs in flight per endpoint.
pub const DEFAULT_CREDITS: u32 = 32;
/// DAOS `D_QUOTA_RPCS` default: RPCs in flight per context (all endpoints together).
pub const DEFAULT_QUOTA_RPCS: u32 = 64;
/// How long the progress loop spins on the CQ after the last completion before blocking on the wait
/// fd. Blocking costs 36–70 µs per round trip on this VM (feasibility.md) versus 6–7 µs busy-polling;
/// measured (tcp, 8 B, 1 in flight, median): 0 µs → 56.2 µs round trip, 50 µs → 13.0, 200 µs →
/// 12.2, 1000 µs → 12.4. 200 µs covers back-to-back RPCs with margin and an idle context stops
/// spinning after 0.2 ms (see the crate doc).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);
/// Fruitless spinning after which the progress loop also calls sched_yield on every poll (see
/// `context`).
pub const DEFAULT_SPIN_YIELD_AFTER: Duration = Duration::from_micros(5);
/// Tight CQ-polling burst inside the spin window (see `context`). Default off: measured on this VM
/// (shm, 8 B, 1 in flight, same minute) a 20 µs burst gave a 24–26 µs mean round trip versus
/// 3.8–3.9 µs without, because the burst delays the task that sends the next RPC.
pub const DEFAULT_SPIN_BURST: Duration = Duration::ZERO;
/// Pre-posted receive buffers per context.
pub const DEFAULT_RECV_COUNT: usize = 256;
/// Largest body accepted at all (DAOS: 64 MiB in/out).
pub const MAX_BODY: usize = 64 << 20;

/// cart configuration (DAOS `crt_init_options_t` analogue).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `D_PROVIDER`: `ofi+tcp;ofi_rxm` (default), `ofi+tcp`, `ofi+shm`, `ofi+verbs;ofi_rxm`.
    pub provider: Option<String>,
    /// `D_INTERFACE` (default `lo` for tcp).
    pub interface: Option<String>,
    /// `D_DOMAIN`.
    pub domain: Option<String>,
    /// `D_PORT`: first port; context `i` listens on `port + i`.
    pub port: Option<u16>,
    /// `CRT_TIMEOUT` in seconds, range (0, 3600].
    pub timeout: Option<Duration>,
    /// `CRT_CREDIT_EP_CTX`: in-flight RPCs per endpoint (0 = unlimited).
    pub credits: Option<u32>,
    /// `CART_SPIN_US`: CQ spin window before blocking.
    pub spin: Option<Duration>,
    /// `CART_INLINE_LIMIT`: bodies larger than this go by bulk.
    pub inline_limit: Option<usize>,
    /// Pre-posted receive buffers.
    pub recv_count: Option<usize>,
    /// `CART_SPIN_YIELD_US`: after this much fruitless spinning every poll also calls sched_yield
    /// (`off` = never).
    pub spin_yield_after: Option<Option<Duration>>,
    /// `CART_SPIN_BURST_US`: longest tight CQ-polling burst inside the spin window before the
    /// progress task yields to the runtime.
    pub spin_burst: Option<Duration>,
    /// `CART_BULK_INFLIGHT`: bulk transfers kept in progress at once by a service that owns a
    /// buffer pool (the self-test service), 1..=1024; default per provider (`ProviderCaps`).
    pub bulk_inflight: Option<u32>,
    /// `D_QUOTA_RPCS`: RPCs in flight per context over all endpoints (0 = unlimited); the rest
    /// wait, like RPCs beyond an endpoint's credits.
    pub quota_rpcs: Option<u32>,
    /// `CART_POLL_PAUSES`: CPU pause hints before each tight CQ poll, 0..=1024; default per
    /// provider (`ProviderCaps::poll_pauses`).
    pub poll_pauses: Option<u32>,
    /// `CART_PROGRESS_MODE`: `block` (default: after the spin window an idle context sleeps on
    /// the CQ wait fd where the provider has one) or `busy` (Mercury's `NA_NO_BLOCK`: no wait
    /// object; lower round trips on tcp, an idle context polls with back-off like shm).
    pub busy_poll: Option<bool>,
}

/// A configuration with every field decided.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Provider.
    pub provider: Provider,
    /// Interface, if any.
    pub interface: Option<String>,
    /// Domain, if any.
    pub domain: Option<String>,
    /// First port, if any.
    pub port: Option<u16>,
    /// Default per-RPC timeout.
    pub timeout: Duration,
    /// Credits per endpoint.
    pub credits: u32,
    /// Spin window.
    pub spin: Duration,
    /// Inline limit.
    pub inline_limit: usize,
    /// Receive buffers.
    pub recv_count: usize,
    /// Tight-poll burst.
    pub spin_burst: Duration,
    /// Fruitless spinning after which each poll also calls sched_yield (None = never).
    pub spin_yield_after: Option<Duration>,
    /// Bulk transfers a buffer-pool service keeps in progress at once.
    pub bulk_inflight: u32,
    /// RPCs in flight per context (0 = unlimited).
    pub quota_rpcs: u32,
    /// Pause hints before each tight CQ poll.
    pub poll_pauses: u32,
    /// Busy-poll mode: no CQ wait object.
    pub busy_poll: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, CartError> {
    v.trim()
        .parse()
        .map_err(|_| CartError::Config(format!("{name}={v:?} is not a valid number")))
}

/// `CART_PROGRESS_MODE`: true for `busy`, false for `block`.
fn parse_progress_mode(v: &str) -> Result<bool, CartError> {
    match v.trim() {
        "block" => Ok(false),
        "busy" => Ok(true),
        other => Err(CartError::Config(format!(
            "CART_PROGRESS_MODE={other:?}: use block or busy"
        ))),
    }
}

impl Config {
    /// Resolves fields: code > environment > defaults.
    pub fn resolve(&self) -> Result<Resolved, CartError> {
        let pstr = self
            .provider
            .clone()
            .or_else(|| env("D_PROVIDER"))
            .unwrap_or_else(|| Provider::default().name().to_string());
        let provider = Provider::parse(&pstr).ok_or_else(|| {
            CartError::Config(format!(
                "D_PROVIDER {pstr:?} is not supported (use ofi+tcp;ofi_rxm, ofi+tcp, ofi+shm or ofi+verbs;ofi_rxm)"
            ))
        })?;
        let interface = self
            .interface
            .clone()
            .or_else(|| env("D_INTERFACE"))
            .or_else(|| provider.caps().default_interface.map(str::to_string));
        let domain = self.domain.clone().or_else(|| env("D_DOMAIN"));
        let port = match self.port {
            Some(p) => Some(p),
            None => env("D_PORT").map(|v| parse_num("D_PORT", &v)).transpose()?,
        };
        let timeout = match self.timeout {
            Some(t) => t,
            None => match env("CRT_TIMEOUT") {
                Some(v) => Duration::from_secs(parse_num::<u64>("CRT_TIMEOUT", &v)?),
                None => DEFAULT_TIMEOUT,
            },
        };
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return Err(CartError::Config(format!(
                "CRT_TIMEOUT {timeout:?} outside (0, 3600] s"
            )));
        }
        let credits = match self.credits {
            Some(c) => c,
            None => env("CRT_CREDIT_EP_CTX")
                .map(|v| parse_num("CRT_CREDIT_EP_CTX", &v))
                .transpose()?
                .unwrap_or(DEFAULT_CREDITS),
        };
        if credits > 256 {
            return Err(CartError::Config(format!(
                "CRT_CREDIT_EP_CTX {credits} outside 0..=256"
            )));
        }
        let spin = match self.spin {
            Some(s) => s,
            None => env("CART_SPIN_US")
                .map(|v| parse_num::<u64>("CART_SPIN_US", &v).map(Duration::from_micros))
                .transpose()?
                .unwrap_or(DEFAULT_SPIN),
        };
        let inline_limit = match self.inline_limit {
            Some(l) => l,
            None => env("CART_INLINE_LIMIT")
                .map(|v| parse_num("CART_INLINE_LIMIT", &v))
                .transpose()?
                .unwrap_or(DEFAULT_INLINE_LIMIT),
        };
        if inline_limit > 1 << 20 {
            return Err(CartError::Config(format!(
                "inline limit {inline_limit} above 1 MiB"
            )));
        }
        let bulk_inflight = match self.bulk_inflight {
            Some(n) => n,
            None => env("CART_BULK_INFLIGHT")
                .map(|v| parse_num("CART_BULK_INFLIGHT", &v))
                .transpose()?
                .unwrap_or(provider.caps().bulk_inflight),
        };
        if !(1..=1024).contains(&bulk_inflight) {
            return Err(CartError::Config(format!(
                "CART_BULK_INFLIGHT {bulk_inflight} outside 1..=1024"
            )));
        }
        let quota_rpcs = match self.quota_rpcs {
            Some(n) => n,
            None => env("D_QUOTA_RPCS")
                .map(|v| parse_num("D_QUOTA_RPCS", &v))
                .transpose()?
                .unwrap_or(DEFAULT_QUOTA_RPCS),
        };
        if quota_rpcs > 65536 {
            return Err(CartError::Config(format!(
                "D_QUOTA_RPCS {quota_rpcs} outside 0..=65536"
            )));
        }
        let poll_pauses = match self.poll_pauses {
            Some(n) => n,
            None => env("CART_POLL_PAUSES")
                .map(|v| parse_num("CART_POLL_PAUSES", &v))
                .transpose()?
                .unwrap_or(provider.caps().poll_pauses),
        };
        if poll_pauses > 1024 {
            return Err(CartError::Config(format!(
                "CART_POLL_PAUSES {poll_pauses} outside 0..=1024"
            )));
        }
        let busy_poll = match self.busy_poll {
            Some(b) => b,
            None => env("CART_PROGRESS_MODE")
                .map(|v| parse_progress_mode(&v))
                .transpose()?
                .unwrap_or(false),
        };
        Ok(Resolved {
            provider,
            busy_poll,
            poll_pauses,
            bulk_inflight,
            quota_rpcs,
            interface,
            domain,
            port,
            timeout,
            credits,
            spin,
            inline_limit,
            recv_count: match self.recv_count {
                Some(n) => n,
                None => env("CART_RECV_COUNT")
                    .map(|v| parse_num("CART_RECV_COUNT", &v))
                    .transpose()?
                    .unwrap_or(DEFAULT_RECV_COUNT),
            },
            spin_yield_after: match self.spin_yield_after {
                Some(y) => y,
                None => match env("CART_SPIN_YIELD_US") {
                    Some(v) if v.trim() == "off" => None,
                    Some(v) => Some(Duration::from_micros(parse_num("CART_SPIN_YIELD_US", &v)?)),
                    None => Some(DEFAULT_SPIN_YIELD_AFTER),
                },
            },
            spin_burst: match self.spin_burst {
                Some(b) => b,
                None => env("CART_SPIN_BURST_US")
                    .map(|v| parse_num::<u64>("CART_SPIN_BURST_US", &v).map(Duration::from_micros))
                    .transpose()?
                    .unwrap_or(DEFAULT_SPIN_BURST),
            },
        })
    }
}

impl Resolved {
    /// The node address to bind for this provider/interface (`lo` → 127.0.0.1).
    pub fn node(&self) -> Option<String> {
        if !self.provider.caps().source_node {
            return None;
        }
        match self.interface.as_deref() {
            None | Some("lo") => Some("127.0.0.1".to_string()),
            Some(_) => None,
        }
    }

    /// The libfabric domain to ask for.
    pub fn fi_domain(&self) -> Option<String> {
        self.domain.clone().or_else(|| {
            if self.provider.caps().domain_is_interface {
                self.interface.clone()
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_beats_default_and_bad_values_are_named() {
        let c = Config {
            provider: Some("ofi+shm".into()),
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let r = c.resolve().unwrap();
        assert_eq!(r.provider, Provider::Shm);
        assert_eq!(r.timeout, Duration::from_secs(5));
        assert_eq!(r.node(), None);
        let bad = Config {
            provider: Some("ofi+cxi".into()),
            ..Default::default()
        };
        let e = bad.resolve().unwrap_err().to_string();
        assert!(e.contains("ofi+cxi"), "{e}");
        let zero = Config {
            timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        assert!(zero.resolve().is_err());
        assert_eq!(r.bulk_inflight, Provider::Shm.caps().bulk_inflight);
        let e = Config {
            bulk_inflight: Some(0),
            ..Default::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("CART_BULK_INFLIGHT"), "{e}");
        let tcp = Config {
            provider: Some("ofi+tcp".into()),
            interface: Some("lo".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(tcp.provider, Provider::TcpRxm);
        assert_eq!(tcp.node().as_deref(), Some("127.0.0.1"));
        assert_eq!(tcp.fi_domain().as_deref(), Some("lo"));
        let busy = Config {
            busy_poll: Some(true),
            ..Default::default()
        };
        assert!(busy.resolve().unwrap().busy_poll);
        // Poll pauses: per provider by default, a field beats it, out of range is named.
        assert_eq!(r.poll_pauses, Provider::Shm.caps().poll_pauses);
        assert_eq!(tcp.poll_pauses, 0);
        let p = Config {
            provider: Some("ofi+shm".into()),
            poll_pauses: Some(3),
            ..Default::default()
        };
        assert_eq!(p.resolve().unwrap().poll_pauses, 3);
        let e = Config {
            poll_pauses: Some(5000),
            ..Default::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("CART_POLL_PAUSES"), "{e}");
        assert!(!parse_progress_mode(" block ").unwrap());
        assert!(parse_progress_mode("busy").unwrap());
        let e = parse_progress_mode("spin").unwrap_err().to_string();
        assert!(
            e.contains("CART_PROGRESS_MODE") && e.contains("spin"),
            "{e}"
        );
    }
}
