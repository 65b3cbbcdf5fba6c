//! Request bodies of the self-test protocol (what a remote peer controls) never panic the decoder.
#![no_main]
use cart::selftest::{Echo, OpenSession, Start, TestMsg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cap = 1 << 20;
    let _ = cart::wire::decode_body::<TestMsg>(data, cap);
    let _ = cart::wire::decode_body::<Start>(data, cap);
    let _ = cart::wire::decode_body::<OpenSession>(data, cap);
    let _ = cart::wire::decode_body::<Echo>(data, cap);
    let _ = cart::wire::decode_body::<cart::BulkHandle>(data, cap);
});
