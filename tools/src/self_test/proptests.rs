//! The parsers must never panic, whatever the input: random strings, and random strings built from
//! the grammar's own alphabet (which reach deeper into the parsers than arbitrary Unicode does).

use proptest::prelude::*;

use super::args::{
    parse_endpoints, parse_master_endpoints, parse_message_sizes, EndpointId, MsgType,
    MAX_ENDPOINTS,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn endpoint_parser_never_panics_on_any_string(s in ".{0,64}") {
        let _ = parse_endpoints(std::slice::from_ref(&s));
        let _ = parse_master_endpoints(&[s]);
    }

    #[test]
    fn endpoint_parser_never_panics_on_grammar_alphabet(s in "[0-9:,\\- ]{0,24}") {
        if let Ok(v) = parse_endpoints(std::slice::from_ref(&s)) {
            prop_assert!(v.len() as u64 <= MAX_ENDPOINTS);
        }
    }

    #[test]
    fn sizes_parser_never_panics_on_any_string(s in ".{0,64}") {
        let _ = parse_message_sizes(&s);
    }

    #[test]
    fn sizes_parser_never_panics_on_grammar_alphabet(s in "[0-9eib(), \t]{0,32}") {
        if let Ok(v) = parse_message_sizes(&s) {
            prop_assert!(!v.is_empty());
            for p in v {
                // The fix-ups hold for every accepted tuple.
                prop_assert_eq!(p.send.size == 0, p.send.ty == MsgType::Empty);
                prop_assert_eq!(p.reply.size == 0, p.reply.ty == MsgType::Empty);
                prop_assert!(p.send.ty != MsgType::BulkPut);
                prop_assert!(p.reply.ty != MsgType::BulkGet);
            }
        }
    }

    #[test]
    fn single_ranges_expand_to_their_product(r0 in 0u32..50, r1 in 0u32..50, t0 in 0u32..8, t1 in 0u32..8) {
        let v = parse_endpoints(&[format!("{r0}-{r1}:{t0}-{t1}")]).unwrap();
        let (rl, rh) = (r0.min(r1), r0.max(r1));
        let (tl, th) = (t0.min(t1), t0.max(t1));
        prop_assert_eq!(v.len() as u32, (rh - rl + 1) * (th - tl + 1));
        prop_assert_eq!(v[0], EndpointId { rank: rl, tag: tl });
        prop_assert_eq!(*v.last().unwrap(), EndpointId { rank: rh, tag: th });
        // Rank-major: sorted already.
        prop_assert!(v.windows(2).all(|w| w[0] < w[1]));
    }
}
