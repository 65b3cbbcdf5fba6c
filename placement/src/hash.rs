//! Hashes used by placement: Lamping–Veach jump consistent hash, a table CRC-64 for re-keying, and the
//! oid key. All are fixed forever: changing any of them moves data (the golden tests pin them).

/// CRC-64/ECMA-182 polynomial (reflected form, as in CRC-64/XZ).
const POLY: u64 = 0xC96C_5795_D787_0F42;

const fn make_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    // Slicing-by-8: t[k][i] is the CRC of byte i followed by k zero bytes.
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u64; 256]; 8] = make_tables();

/// CRC-64 over the little-endian bytes of `words`, starting from `seed` (slicing-by-8, one step per
/// word; identical to the byte-at-a-time definition).
#[inline]
pub fn crc64(seed: u64, words: &[u64]) -> u64 {
    let t = &TABLES;
    let mut crc = !seed;
    for &w in words {
        let x = crc ^ w;
        crc = t[7][(x & 0xff) as usize]
            ^ t[6][(x >> 8 & 0xff) as usize]
            ^ t[5][(x >> 16 & 0xff) as usize]
            ^ t[4][(x >> 24 & 0xff) as usize]
            ^ t[3][(x >> 32 & 0xff) as usize]
            ^ t[2][(x >> 40 & 0xff) as usize]
            ^ t[1][(x >> 48 & 0xff) as usize]
            ^ t[0][(x >> 56) as usize];
    }
    !crc
}

/// Byte-at-a-time CRC-64 (the definition; kept for the equivalence test).
#[cfg(test)]
fn crc64_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut crc = !seed;
    for &b in bytes {
        crc = TABLES[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Avalanche finaliser (MurmurHash3 fmix64) so that CRC's linearity does not leak into jump's buckets.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Re-key after a collision: CRC of the key and a counter, finalised.
#[inline]
pub fn rekey(key: u64, n: u64) -> u64 {
    fmix64(crc64(key, &[n]))
}

/// Derive an independent sub-key (per shard, per level) without CRC cost.
#[inline]
pub fn subkey(key: u64, salt: u64) -> u64 {
    fmix64(key ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Object key (layout version 2 in DAOS terms: CRC-64 over hi, lo and a constant).
#[inline]
pub fn oid_key(hi: u64, lo: u64) -> u64 {
    fmix64(crc64(0, &[hi, lo, 0x6461_6f73_2d72_7321]))
}

/// Jump consistent hash (Lamping & Veach 2014): bucket in `0..n` for `key`; `n` must be >= 1.
/// Growing `n` to `n + k` moves exactly the keys that land in the new buckets.
#[inline]
pub fn jump(mut key: u64, n: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < n as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_check_value() {
        // CRC-64/XZ check value of "123456789" (same reflected ECMA polynomial, init/xorout all-ones).
        assert_eq!(crc64_bytes(0, b"123456789"), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn slicing_by_8_matches_bytewise() {
        for i in 0..500u64 {
            let words = [fmix64(i), i, !i];
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert_eq!(crc64(i, &words), crc64_bytes(i, &bytes));
        }
    }

    #[test]
    fn jump_is_monotone() {
        for k in 0..2000u64 {
            let key = fmix64(k);
            let a = jump(key, 16);
            let b = jump(key, 18);
            assert!(a < 16);
            assert!(b == a || b >= 16, "key {k}: {a} -> {b}");
        }
    }
}
