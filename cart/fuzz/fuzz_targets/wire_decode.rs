//! Any byte string given to the header decoder yields a message or an error, never a panic, and a
//! decoded message re-encodes to an equivalent one.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = cart::wire::decode(data) {
        let again = cart::wire::encode(&m.hdr, m.src_addr, m.body, m.overflow.as_ref());
        let m2 = cart::wire::decode(&again).expect("re-encoded message decodes");
        assert_eq!(m.hdr, m2.hdr);
        assert_eq!(m.body, m2.body);
    }
});
