//! The cart wire header (fixed little-endian layout, decoded with bounds checks, never panics) and
//! the bincode 2 body codec with size caps.
//!
//! ```text
//! 0  magic u32 (0xCA27_0002: "cart", wire version 2)
//! 4  kind u8 | flags u8 | addr_len u16
//! 8  opcode u32 | rc i32
//! 16 rpc_id u64
//! 24 src_rank u32 | src_tag u32 | dst_rank u32 | dst_tag u32
//! 40 hlc u64
//! 48 body_len u32 | overflow u32 (length of the encoded bulk descriptor, 0 = inline body)
//! 56 bulk descriptor (overflow bytes) or body (body_len bytes)
//!    source address (addr_len bytes; requests only, so the server can reply)
//! ```
//!
//! The body comes before the address so a [`Framed`] message can be built in ONE buffer: the body
//! is encoded right after room left for the header, then the address and header are added (a
//! body encoded on its own and copied into a message cost an allocation and a copy per message
//! each way).

use crate::transport::RemoteMem;

/// Header magic and wire version.
pub const MAGIC: u32 = 0xCA27_0002;
/// Fixed header size.
pub const HEADER_LEN: usize = 56;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A request expecting a reply.
    Request = 1,
    /// A reply, matched by `rpc_id`.
    Reply = 2,
    /// A request without reply.
    OneWay = 3,
    /// "I fetched your overflowed reply body; release it" (rpc_id names the reply).
    Release = 4,
    /// Liveness probe of a peer with long-pending RPCs; `rpc_id` is echoed in the [`Kind::Pong`].
    Ping = 5,
    /// Answer to a [`Kind::Ping`], sent by the progress loop (not by a handler).
    Pong = 6,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Request,
            2 => Kind::Reply,
            3 => Kind::OneWay,
            4 => Kind::Release,
            5 => Kind::Ping,
            6 => Kind::Pong,
            _ => return None,
        })
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Message kind.
    pub kind: Kind,
    /// Flags (reserved).
    pub flags: u8,
    /// Opcode (`base<<24 | version<<16 | index`).
    pub opcode: u32,
    /// Reply status (0 or `-DER_*`).
    pub rc: i32,
    /// RPC id, unique per sender context.
    pub rpc_id: u64,
    /// Sender rank.
    pub src_rank: u32,
    /// Sender tag.
    pub src_tag: u32,
    /// Destination rank.
    pub dst_rank: u32,
    /// Destination tag.
    pub dst_tag: u32,
    /// Sender's HLC timestamp.
    pub hlc: u64,
}

/// A decoded message, borrowing the receive buffer.
#[derive(Debug)]
pub struct Msg<'a> {
    /// The header.
    pub hdr: Header,
    /// Sender's transport address (requests).
    pub src_addr: &'a [u8],
    /// Body, when inline.
    pub body: &'a [u8],
    /// Bulk descriptor of the body, when it overflowed the inline limit.
    pub overflow: Option<RemoteMem>,
}

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the fixed header.
    #[error("message of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    /// Wrong magic or wire version.
    #[error("bad magic {0:#010x} (expected {MAGIC:#010x})")]
    Magic(u32),
    /// Unknown kind byte.
    #[error("unknown message kind {0}")]
    Kind(u8),
    /// Lengths in the header exceed the message.
    #[error("header announces {announced} bytes but only {have} follow")]
    Truncated {
        /// Bytes announced.
        announced: usize,
        /// Bytes present.
        have: usize,
    },
    /// The overflow descriptor does not decode.
    #[error("bad bulk descriptor: {0}")]
    Descriptor(String),
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[o..o + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Writes the fixed header into `out` (exactly [`HEADER_LEN`] bytes).
fn put_header(out: &mut [u8], hdr: &Header, addr_len: usize, body_len: u64, desc_len: usize) {
    let mut w = 0;
    let mut put = |b: &[u8]| {
        out[w..w + b.len()].copy_from_slice(b);
        w += b.len();
    };
    put(&MAGIC.to_le_bytes());
    put(&[hdr.kind as u8, hdr.flags]);
    put(&(addr_len as u16).to_le_bytes());
    put(&hdr.opcode.to_le_bytes());
    put(&hdr.rc.to_le_bytes());
    put(&hdr.rpc_id.to_le_bytes());
    for x in [hdr.src_rank, hdr.src_tag, hdr.dst_rank, hdr.dst_tag] {
        put(&x.to_le_bytes());
    }
    put(&hdr.hlc.to_le_bytes());
    put(&(body_len as u32).to_le_bytes());
    put(&(desc_len as u32).to_le_bytes());
}

/// Encodes a message: header, then either the body or its bulk descriptor, then the source address.
pub fn encode(hdr: &Header, src_addr: &[u8], body: &[u8], overflow: Option<&RemoteMem>) -> Vec<u8> {
    let desc = overflow
        .map(|d| bincode::encode_to_vec(d, bincode::config::standard()).unwrap_or_default());
    let payload = desc.as_deref().unwrap_or(body);
    let mut v = vec![0u8; HEADER_LEN];
    v.reserve(payload.len() + src_addr.len());
    let body_len = overflow.map_or(body.len() as u64, |d| d.len);
    put_header(
        &mut v,
        hdr,
        src_addr.len(),
        body_len,
        desc.as_ref().map_or(0, Vec::len),
    );
    v.extend_from_slice(payload);
    v.extend_from_slice(src_addr);
    v
}

/// A message being built in one buffer: room for the header, then the body; [`Framed::finish`]
/// adds the source address and writes the header. A body handed over as a plain Vec
/// ([`Framed::raw`]) has no room in front: finishing it copies it (inline bodies are small), and
/// an overflowed one is registered as it is.
#[derive(Debug)]
pub struct Framed {
    buf: Vec<u8>,
    /// Where the body starts: [`HEADER_LEN`], or 0 for a raw body.
    off: usize,
}

/// bincode writer appending to a Vec (no intermediate buffer).
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

impl Framed {
    /// A message whose body is `body` (no copy until [`Framed::finish`]).
    pub fn raw(body: Vec<u8>) -> Framed {
        Framed { buf: body, off: 0 }
    }

    /// A message whose body is `v` encoded with bincode 2 (standard config); more than `cap` body
    /// bytes is an error.
    pub fn encode<T: bincode::Encode>(
        what: &'static str,
        v: &T,
        cap: usize,
    ) -> Result<Framed, crate::CartError> {
        let mut buf = Vec::with_capacity(HEADER_LEN + 128);
        buf.resize(HEADER_LEN, 0);
        bincode::encode_into_writer(v, VecWriter(&mut buf), bincode::config::standard()).map_err(
            |e| crate::CartError::Codec {
                what,
                reason: e.to_string(),
            },
        )?;
        let f = Framed {
            buf,
            off: HEADER_LEN,
        };
        if f.body_len() > cap {
            return Err(crate::CartError::TooLarge {
                what,
                size: f.body_len(),
                cap,
            });
        }
        Ok(f)
    }

    /// Body length.
    pub fn body_len(&self) -> usize {
        self.buf.len() - self.off
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.buf[self.off..]
    }

    /// The whole buffer and the offset of the body in it (for registering an overflowed body
    /// without copying it out).
    pub fn into_buffer(self) -> (Vec<u8>, usize) {
        (self.buf, self.off)
    }

    /// The finished inline message: the body, then `src_addr`, under `hdr`.
    pub fn finish(mut self, hdr: &Header, src_addr: &[u8]) -> Vec<u8> {
        if self.off == 0 {
            return encode(hdr, src_addr, &self.buf, None);
        }
        let body_len = self.body_len() as u64;
        self.buf.extend_from_slice(src_addr);
        put_header(
            &mut self.buf[..HEADER_LEN],
            hdr,
            src_addr.len(),
            body_len,
            0,
        );
        self.buf
    }
}

/// Decodes a message without copying the body.
pub fn decode(b: &[u8]) -> Result<Msg<'_>, WireError> {
    if b.len() < HEADER_LEN {
        return Err(WireError::Short(b.len()));
    }
    let magic = u32_at(b, 0);
    if magic != MAGIC {
        return Err(WireError::Magic(magic));
    }
    let kind = Kind::from_u8(b[4]).ok_or(WireError::Kind(b[4]))?;
    let addr_len = u16::from_le_bytes([b[6], b[7]]) as usize;
    let hdr = Header {
        kind,
        flags: b[5],
        opcode: u32_at(b, 8),
        rc: u32_at(b, 12) as i32,
        rpc_id: u64_at(b, 16),
        src_rank: u32_at(b, 24),
        src_tag: u32_at(b, 28),
        dst_rank: u32_at(b, 32),
        dst_tag: u32_at(b, 36),
        hlc: u64_at(b, 40),
    };
    let body_len = u32_at(b, 48) as usize;
    let desc_len = u32_at(b, 52) as usize;
    let rest = &b[HEADER_LEN..];
    let payload_len = if desc_len > 0 { desc_len } else { body_len };
    let need = addr_len + payload_len;
    if rest.len() < need {
        return Err(WireError::Truncated {
            announced: need,
            have: rest.len(),
        });
    }
    let payload = &rest[..payload_len];
    let src_addr = &rest[payload_len..need];
    if desc_len > 0 {
        let (d, _): (RemoteMem, usize) =
            bincode::decode_from_slice(payload, bincode::config::standard().with_limit::<4096>())
                .map_err(|e| WireError::Descriptor(e.to_string()))?;
        if d.len != body_len as u64 {
            return Err(WireError::Descriptor(format!(
                "descriptor covers {} bytes, body is {body_len}",
                d.len
            )));
        }
        Ok(Msg {
            hdr,
            src_addr,
            body: &[],
            overflow: Some(d),
        })
    } else {
        Ok(Msg {
            hdr,
            src_addr,
            body: payload,
            overflow: None,
        })
    }
}

/// Encodes a body with bincode 2 (standard config), refusing more than `cap` bytes.
pub fn encode_body<T: bincode::Encode>(
    what: &'static str,
    v: &T,
    cap: usize,
) -> Result<Vec<u8>, crate::CartError> {
    let out = bincode::encode_to_vec(v, bincode::config::standard()).map_err(|e| {
        crate::CartError::Codec {
            what,
            reason: e.to_string(),
        }
    })?;
    if out.len() > cap {
        return Err(crate::CartError::TooLarge {
            what,
            size: out.len(),
            cap,
        });
    }
    Ok(out)
}

/// Decodes a body with bincode 2, refusing to allocate past `cap` and rejecting trailing bytes.
pub fn decode_body<T: bincode::Decode<()>>(b: &[u8], cap: usize) -> Result<T, String> {
    checked_decode(b, cap, |b| bincode::decode_from_slice(b, body_config()))
}

/// [`decode_body`] for a type that borrows from `b` (byte slices point into it, no copy).
pub fn borrow_decode_body<'a, T: bincode::BorrowDecode<'a, ()>>(
    b: &'a [u8],
    cap: usize,
) -> Result<T, String> {
    checked_decode(b, cap, |b| {
        bincode::borrow_decode_from_slice(b, body_config())
    })
}

/// bincode 2's standard configuration, allocating at most a body's cap.
fn body_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ crate::config::MAX_BODY }>()
}

/// The checks around a body decode: at most `cap` bytes, none left over.
fn checked_decode<'a, T>(
    b: &'a [u8],
    cap: usize,
    decode: impl FnOnce(&'a [u8]) -> Result<(T, usize), bincode::error::DecodeError>,
) -> Result<T, String> {
    if b.len() > cap {
        return Err(format!(
            "body of {} bytes exceeds the cap of {cap}",
            b.len()
        ));
    }
    let (v, used) = decode(b).map_err(|e| e.to_string())?;
    if used != b.len() {
        return Err(format!("{} trailing bytes after the body", b.len() - used));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Access;

    fn hdr(kind: Kind) -> Header {
        Header {
            kind,
            flags: 0,
            opcode: 0xF201_0003,
            rc: -1011,
            rpc_id: 0x1234_5678_9abc,
            src_rank: 1,
            src_tag: 2,
            dst_rank: 3,
            dst_tag: 4,
            hlc: 99,
        }
    }

    #[test]
    fn round_trip_inline_and_overflow() {
        let h = hdr(Kind::Request);
        let m = encode(&h, b"addr", b"body!", None);
        let d = decode(&m).unwrap();
        assert_eq!(d.hdr, h);
        assert_eq!(d.src_addr, b"addr");
        assert_eq!(d.body, b"body!");
        assert!(d.overflow.is_none());

        let rm = RemoteMem {
            owner: vec![1, 2, 3],
            base: 77,
            len: 5,
            key: 9,
            access: Access::ReadOnly,
        };
        let m = encode(&hdr(Kind::Reply), &[], &[], Some(&rm));
        let d = decode(&m).unwrap();
        assert_eq!(d.overflow.as_ref(), Some(&rm));
        assert!(d.body.is_empty());
    }

    #[test]
    fn framed_messages_decode_like_encoded_ones() {
        let h = hdr(Kind::Request);
        let v: (u32, Vec<u8>) = (7, vec![1, 2, 3]);
        let f = Framed::encode("req", &v, 1000).unwrap();
        let body = encode_body("req", &v, 1000).unwrap();
        assert_eq!(f.body(), &body[..]);
        let m = f.finish(&h, b"addr");
        assert_eq!(m, encode(&h, b"addr", &body, None));
        let d = decode(&m).unwrap();
        assert_eq!(
            (d.hdr, d.src_addr, d.body),
            (h.clone(), &b"addr"[..], &body[..])
        );
        assert_eq!(decode_body::<(u32, Vec<u8>)>(d.body, 1000).unwrap(), v);
        let m = Framed::raw(b"xyz".to_vec()).finish(&h, b"a");
        assert_eq!(m, encode(&h, b"a", b"xyz", None));
        assert!(matches!(
            Framed::encode("req", &vec![0u8; 100], 10),
            Err(crate::CartError::TooLarge { size: 101, .. })
        ));
        let (buf, off) = Framed::encode("req", &5u8, 10).unwrap().into_buffer();
        assert_eq!((&buf[off..], off), (&[5u8][..], HEADER_LEN));
        let (buf, off) = Framed::raw(b"abc".to_vec()).into_buffer();
        assert_eq!((&buf[off..], off), (&b"abc"[..], 0));
    }

    #[test]
    fn malformed_headers_are_errors_not_panics() {
        assert_eq!(decode(&[0; 10]).unwrap_err(), WireError::Short(10));
        let mut m = encode(&hdr(Kind::Request), b"a", b"xyz", None);
        m[0] ^= 1;
        assert!(matches!(decode(&m), Err(WireError::Magic(_))));
        let mut m = encode(&hdr(Kind::Request), b"a", b"xyz", None);
        m[4] = 9;
        assert_eq!(decode(&m).unwrap_err(), WireError::Kind(9));
        let m = encode(&hdr(Kind::Request), b"a", b"xyz", None);
        assert!(matches!(
            decode(&m[..m.len() - 1]),
            Err(WireError::Truncated { .. })
        ));
        // Every truncation of a valid message is an error, never a panic.
        for i in 0..m.len() {
            assert!(decode(&m[..i]).is_err());
        }
    }

    #[test]
    fn body_codec_caps_and_trailing_bytes() {
        let v: Vec<u32> = (0..100).collect();
        let b = encode_body("req", &v, 1000).unwrap();
        assert_eq!(decode_body::<Vec<u32>>(&b, 1000).unwrap(), v);
        assert!(matches!(
            encode_body("req", &v, 10),
            Err(crate::CartError::TooLarge { .. })
        ));
        assert!(decode_body::<Vec<u32>>(&b, 10).is_err());
        let mut t = b.clone();
        t.push(0);
        assert!(decode_body::<Vec<u32>>(&t, 1000)
            .unwrap_err()
            .contains("trailing"));
        assert!(decode_body::<(u64, String)>(&[0xff, 0xff, 0xff], 1000).is_err());
    }
}
