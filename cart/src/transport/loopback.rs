//! In-process transport: endpoints in one process exchange messages through queues and "RMA" is a
//! bounds-checked memcpy between registered [`DmaBuf`]s. Same semantics as ofi (unexpected messages
//! with a size cap, completions through `progress`, no wait fd → callers poll with back-off), so the
//! conformance suite and the RPC layer run on it unchanged.

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::{
    Access, DmaBuf, Event, MemRegion, OpId, PeerId, RemoteMem, RmaDir, Transport, TransportError,
};

enum Item {
    Msg(Vec<u8>),
    SendDone(OpId, Result<(), TransportError>),
    RmaDone(OpId, Result<(), TransportError>),
}

struct Shared {
    queue: Mutex<VecDeque<Item>>,
    regions: Mutex<HashMap<u64, Weak<MemRegion>>>,
}

fn net() -> &'static Mutex<HashMap<Vec<u8>, Weak<Shared>>> {
    static NET: OnceLock<Mutex<HashMap<Vec<u8>, Weak<Shared>>>> = OnceLock::new();
    NET.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An in-process endpoint.
pub struct LoopbackTransport {
    addr: Vec<u8>,
    shared: Arc<Shared>,
    peers: Mutex<Vec<Vec<u8>>>,
    max_msg: usize,
    next_key: AtomicU64,
}

impl LoopbackTransport {
    /// A new endpoint with a process-unique address and a `max_msg`-byte message limit.
    pub fn new(max_msg: usize) -> LoopbackTransport {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let addr = format!("loop:{}:{id}", std::process::id()).into_bytes();
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            regions: Mutex::new(HashMap::new()),
        });
        lock(net()).insert(addr.clone(), Arc::downgrade(&shared));
        LoopbackTransport {
            addr,
            shared,
            peers: Mutex::new(Vec::new()),
            max_msg,
            next_key: AtomicU64::new(1),
        }
    }

    fn peer_shared(&self, peer: PeerId) -> Result<Arc<Shared>, TransportError> {
        let addr = lock(&self.peers)
            .get(peer as usize)
            .cloned()
            .ok_or_else(|| TransportError::Unreachable {
                peer,
                reason: "unknown peer id".into(),
            })?;
        lock(net())
            .get(&addr)
            .and_then(Weak::upgrade)
            .ok_or_else(|| TransportError::Unreachable {
                peer,
                reason: "endpoint closed".into(),
            })
    }

    fn push_self(&self, item: Item) {
        lock(&self.shared.queue).push_back(item);
    }
}

impl Drop for LoopbackTransport {
    fn drop(&mut self) {
        lock(net()).remove(&self.addr);
    }
}

impl Transport for LoopbackTransport {
    fn provider_name(&self) -> &str {
        "loopback"
    }

    fn self_addr(&self) -> &[u8] {
        &self.addr
    }

    fn max_msg_size(&self) -> usize {
        self.max_msg
    }

    fn insert_addr(&self, raw: &[u8]) -> Result<PeerId, TransportError> {
        if !raw.starts_with(b"loop:") {
            return Err(TransportError::BadAddress {
                len: raw.len(),
                reason: "not a loopback address".into(),
            });
        }
        let mut peers = lock(&self.peers);
        if let Some(i) = peers.iter().position(|p| p == raw) {
            return Ok(i as PeerId);
        }
        peers.push(raw.to_vec());
        Ok((peers.len() - 1) as PeerId)
    }

    fn send(&self, peer: PeerId, msg: Vec<u8>, op: OpId) -> Result<(), TransportError> {
        if msg.len() > self.max_msg {
            return Err(TransportError::TooLarge {
                len: msg.len(),
                max: self.max_msg,
            });
        }
        let res = self
            .peer_shared(peer)
            .map(|s| lock(&s.queue).push_back(Item::Msg(msg)));
        self.push_self(Item::SendDone(op, res));
        Ok(())
    }

    fn register(&self, buf: DmaBuf, access: Access) -> Result<Arc<MemRegion>, TransportError> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let r = Arc::new(MemRegion {
            buf,
            access,
            key,
            remote_base: 0,
            reg: None,
        });
        let mut regions = lock(&self.shared.regions);
        regions.retain(|_, w| w.strong_count() > 0);
        regions.insert(key, Arc::downgrade(&r));
        Ok(r)
    }

    fn rma(
        &self,
        dir: RmaDir,
        local: &Arc<MemRegion>,
        local_off: usize,
        peer: PeerId,
        remote: &RemoteMem,
        remote_off: u64,
        len: usize,
        op: OpId,
    ) -> Result<(), TransportError> {
        remote.check_access(dir)?;
        let res = (|| {
            let s = self.peer_shared(peer)?;
            let region = lock(&s.regions)
                .get(&remote.key)
                .and_then(Weak::upgrade)
                .ok_or_else(|| {
                    TransportError::BadAccess(format!("no region with key {}", remote.key))
                })?;
            // `base` is 0 for a whole region and the window start for a sub-handle.
            let roff = usize::try_from(remote.base + remote_off)
                .map_err(|_| TransportError::BadAccess("remote offset".into()))?;
            let r = match dir {
                RmaDir::Get => local.buf.copy_from(local_off, &region.buf, roff, len),
                RmaDir::Put => region.buf.copy_from(roff, &local.buf, local_off, len),
            };
            r.map_err(TransportError::BadAccess)
        })();
        if let Err(TransportError::BadAccess(m)) = &res {
            return Err(TransportError::BadAccess(m.clone()));
        }
        self.push_self(Item::RmaDone(op, res));
        Ok(())
    }

    fn progress(&self, max: usize, f: &mut dyn FnMut(Event<'_>)) -> Result<usize, TransportError> {
        let mut n = 0;
        while n < max.max(1) {
            let Some(item) = lock(&self.shared.queue).pop_front() else {
                break;
            };
            match item {
                Item::Msg(m) => f(Event::Recv(&m)),
                Item::SendDone(op, r) => f(Event::SendDone(op, r)),
                Item::RmaDone(op, r) => f(Event::RmaDone(op, r)),
            }
            n += 1;
        }
        Ok(n)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        None
    }

    fn try_wait(&self) -> bool {
        false
    }

    fn cancel(&self, _op: OpId) -> bool {
        false
    }
}
