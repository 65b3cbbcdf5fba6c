//! `impl Transport for OfiTransport`: the NA-like operations over the endpoint opened in `mod.rs`.

use std::ffi::c_void;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cart_ofi_sys as sys;

use super::{
    check, strerror, DmaBuf, Mr, OfiTransport, OpCtx, OpHeader, Post, EAGAIN, KIND_RMA, KIND_SEND,
};
use crate::transport::{
    Access, Event, MemRegion, OpId, PeerId, RemoteMem, RmaDir, Transport, TransportError,
};

impl Transport for OfiTransport {
    fn provider_name(&self) -> &str {
        self.provider.name()
    }

    fn self_addr(&self) -> &[u8] {
        &self.self_addr
    }

    fn max_msg_size(&self) -> usize {
        self.recv_size
    }

    fn insert_addr(&self, raw: &[u8]) -> Result<PeerId, TransportError> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = peers.get(raw) {
            return Ok(*p);
        }
        if raw.is_empty() {
            return Err(TransportError::BadAddress {
                len: 0,
                reason: "empty address".into(),
            });
        }
        let mut fi_addr: sys::fi_addr_t = sys::FI_ADDR_NOTAVAIL;
        // SAFETY: raw holds one address in the provider's format (checked by the provider, which
        // returns 0 inserted on a bad one); fi_addr is an out parameter for one entry.
        let rc = unsafe {
            sys::cart_fi_av_insert(
                self.inner.av,
                raw.as_ptr() as *const c_void,
                1,
                &mut fi_addr,
                0,
                ptr::null_mut(),
            )
        };
        if rc != 1 || fi_addr == sys::FI_ADDR_NOTAVAIL {
            return Err(TransportError::BadAddress {
                len: raw.len(),
                reason: format!(
                    "fi_av_insert inserted {rc} addresses ({})",
                    strerror(rc.min(0) as i64)
                ),
            });
        }
        peers.insert(raw.to_vec(), fi_addr);
        Ok(fi_addr)
    }

    fn send(&self, peer: PeerId, msg: Vec<u8>, op: OpId) -> Result<(), TransportError> {
        if msg.len() > self.recv_size {
            return Err(TransportError::TooLarge {
                len: msg.len(),
                max: self.recv_size,
            });
        }
        self.post(Box::new(OpCtx {
            hdr: OpHeader {
                ctx: sys::fi_context2::default(),
                kind: KIND_SEND,
            },
            op,
            peer,
            msg,
            region: None,
            post: Post::Send,
            deferred: None,
        }))
    }

    fn register(&self, buf: DmaBuf, access: Access) -> Result<Arc<MemRegion>, TransportError> {
        let mut acc = (sys::FI_READ | sys::FI_WRITE | sys::FI_REMOTE_READ) as u64;
        if access == Access::ReadWrite {
            acc |= sys::FI_REMOTE_WRITE as u64;
        }
        let prov_key = self.mr_mode & sys::FI_MR_PROV_KEY != 0;
        let req_key = if prov_key {
            0
        } else {
            self.next_key.fetch_add(1, Ordering::Relaxed)
        };
        let mut mr: *mut sys::fid_mr = ptr::null_mut();
        // SAFETY: buf's allocation is stable and outlives the MR: both live in the returned
        // MemRegion, whose Drop closes the MR (field `reg`) before `buf` is freed.
        let rc = unsafe {
            sys::cart_fi_mr_reg(
                self.inner.domain,
                buf.as_ptr() as *const c_void,
                buf.reg_len(),
                acc,
                0,
                req_key,
                0,
                &mut mr,
                ptr::null_mut(),
            )
        };
        check("fi_mr_reg", rc as i64)?;
        let mut holder = Mr {
            mr,
            desc: ptr::null_mut(),
            _owner: self.inner.clone(),
        };
        if self.mr_mode & sys::FI_MR_ENDPOINT != 0 {
            // SAFETY: mr and ep are live; binding then enabling is the documented FI_MR_ENDPOINT flow.
            unsafe {
                check(
                    "fi_mr_bind",
                    sys::cart_fi_mr_bind(mr, &mut (*self.inner.ep).fid, 0) as i64,
                )?;
                check("fi_mr_enable", sys::cart_fi_mr_enable(mr) as i64)?;
            }
        }
        // SAFETY: mr is a live registration.
        let (key, desc) = unsafe { (sys::cart_fi_mr_key(mr), sys::cart_fi_mr_desc(mr)) };
        holder.desc = desc;
        let remote_base = if self.mr_mode & sys::FI_MR_VIRT_ADDR != 0 {
            buf.as_ptr() as u64
        } else {
            0
        };
        Ok(Arc::new(MemRegion {
            buf,
            access,
            key,
            remote_base,
            reg: Some(Box::new(holder)),
        }))
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
        if local_off.checked_add(len).is_none_or(|e| e > local.len()) {
            return Err(TransportError::BadAccess(format!(
                "local range {local_off}+{len} outside region of {} bytes",
                local.len()
            )));
        }
        if remote_off
            .checked_add(len as u64)
            .is_none_or(|e| e > remote.len)
        {
            return Err(TransportError::BadAccess(format!(
                "remote range {remote_off}+{len} outside region of {} bytes",
                remote.len
            )));
        }
        remote.check_access(dir)?;
        let desc = local
            .reg
            .as_ref()
            .and_then(|r| r.downcast_ref::<Mr>())
            .map_or(ptr::null_mut(), |m| m.desc);
        // SAFETY: offset checked against the region length above.
        let local_ptr = unsafe { local.buf.as_ptr().add(local_off) };
        self.post(Box::new(OpCtx {
            hdr: OpHeader {
                ctx: sys::fi_context2::default(),
                kind: KIND_RMA,
            },
            op,
            peer,
            msg: Vec::new(),
            region: Some(local.clone()),
            post: Post::Rma {
                dir,
                local: local_ptr,
                len,
                desc,
                addr: remote.base + remote_off,
                key: remote.key,
            },
            deferred: None,
        }))
    }

    fn progress(&self, max: usize, f: &mut dyn FnMut(Event<'_>)) -> Result<usize, TransportError> {
        self.retry_backlog(f);
        const N: usize = 16;
        // Not zeroed: this runs on every spin of the progress loop, and the provider writes the
        // entries it returns (zeroing 640 bytes per poll only lengthened the poll period).
        let mut entries = [std::mem::MaybeUninit::<sys::fi_cq_data_entry>::uninit(); N];
        // SAFETY: entries has room for N FI_CQ_FORMAT_DATA entries.
        let n = unsafe {
            sys::cart_fi_cq_read(
                self.inner.cq,
                entries.as_mut_ptr() as *mut c_void,
                max.clamp(1, N),
            )
        } as i64;
        if n == EAGAIN {
            return Ok(0);
        }
        if n == -(sys::FI_EAVAIL as i64) {
            return self.read_error(f);
        }
        let n = check("fi_cq_read", n)?.min(N as i64) as usize;
        for e in &entries[..n] {
            // SAFETY: fi_cq_read returned n, so it wrote the first n entries.
            let e = unsafe { e.assume_init_ref() };
            self.complete(e.op_context, e.len, None, f);
        }
        Ok(n)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        self.wait_fd
    }

    fn try_wait(&self) -> bool {
        if self.wait_fd.is_none()
            || self.backlog_len.load(Ordering::Acquire) > 0
            || self.repost_len.load(Ordering::Acquire) > 0
        {
            return false;
        }
        // SAFETY: fabric and cq are live; fids is an array of one fid pointer.
        unsafe {
            let mut fids = [&mut (*self.inner.cq).fid as *mut sys::fid];
            sys::cart_fi_trywait(self.inner.fabric, fids.as_mut_ptr(), 1) == 0
        }
    }

    fn cancel(&self, _op: OpId) -> bool {
        // fi_cancel applies to posted receives; sends and RMA complete on their own (their buffers
        // are owned by the context until then), so cancelling them is a no-op here.
        false
    }
}
