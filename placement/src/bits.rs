//! A small bitmap that remembers which words it touched, so clearing it between layouts costs only what
//! the last layout set (no O(pool) work per object).

/// Bitmap over `0..len` with cheap "clear everything I set".
#[derive(Debug, Clone, Default)]
pub(crate) struct Bits {
    words: Vec<u64>,
    touched: Vec<u32>,
}

impl Bits {
    pub(crate) fn new(len: usize) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64).max(1)],
            touched: Vec::with_capacity(64),
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: u32) -> bool {
        self.words[(i >> 6) as usize] >> (i & 63) & 1 != 0
    }

    #[inline]
    pub(crate) fn set(&mut self, i: u32) {
        let w = &mut self.words[(i >> 6) as usize];
        if *w == 0 {
            self.touched.push(i >> 6);
        }
        *w |= 1 << (i & 63);
    }

    /// Clear bits `start..start + n`.
    pub(crate) fn clear_range(&mut self, start: u32, n: u32) {
        for i in start..start + n {
            self.words[(i >> 6) as usize] &= !(1 << (i & 63));
        }
    }

    /// Clear every bit set since the last `clear`.
    #[inline]
    pub(crate) fn clear(&mut self) {
        for &w in &self.touched {
            self.words[w as usize] = 0;
        }
        self.touched.clear();
    }

    /// Whether any bit is set.
    pub(crate) fn any(&self) -> bool {
        self.touched.iter().any(|&w| self.words[w as usize] != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_clear() {
        let mut b = Bits::new(200);
        b.set(3);
        b.set(130);
        b.set(131);
        assert!(b.get(3) && b.get(130) && !b.get(4));
        b.clear_range(130, 1);
        assert!(!b.get(130) && b.get(131));
        assert!(b.any());
        b.clear();
        assert!(!b.get(3) && !b.get(131) && !b.any());
        // A word cleared by clear_range and set again is still tracked.
        b.set(64);
        b.clear_range(64, 1);
        b.set(65);
        b.clear();
        assert!(!b.get(65));
    }
}
