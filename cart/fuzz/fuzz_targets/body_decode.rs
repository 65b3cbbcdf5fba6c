//! Request and reply bodies of the self-test protocol (what a remote peer controls) never panic the
//! decoders, owned or borrowed.
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
    // The borrowed decodes: the server reads TestMsg in place (same layout as this tuple), the
    // client checks a reply's bytes in place.
    type TestMsgIn<'a> = (
        u32,
        &'a [u8],
        Option<cart::BulkHandle>,
        Option<cart::BulkHandle>,
    );
    let _ = cart::wire::borrow_decode_body::<TestMsgIn<'_>>(data, cap);
    let _ = cart::wire::borrow_decode_body::<&[u8]>(data, cap);
});
