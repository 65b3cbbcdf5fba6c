//! The attach-info parser accepts or rejects any text without panicking; accepted files round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(g) = cart::Group::parse(text) {
            assert_eq!(cart::Group::parse(&g.render()).expect("round trip"), g);
        }
    }
});
