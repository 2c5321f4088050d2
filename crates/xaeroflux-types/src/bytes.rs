//! Bounds-checked reads of byte layouts. Every decoder of a file or wire
//! format reads through these, so a short or damaged input gives `None`
//! (which the caller turns into a typed error naming the offset) and never
//! an out-of-bounds panic.

/// `N` bytes of `b` at `off`, if they are there.
#[inline]
pub fn array_at<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// A little-endian `u16` at `off`.
#[inline]
pub fn u16_le_at(b: &[u8], off: usize) -> Option<u16> {
    array_at(b, off).map(u16::from_le_bytes)
}

/// A little-endian `u32` at `off`.
#[inline]
pub fn u32_le_at(b: &[u8], off: usize) -> Option<u32> {
    array_at(b, off).map(u32::from_le_bytes)
}

/// A little-endian `u64` at `off`.
#[inline]
pub fn u64_le_at(b: &[u8], off: usize) -> Option<u64> {
    array_at(b, off).map(u64::from_le_bytes)
}

/// A big-endian `u32` at `off`.
#[inline]
pub fn u32_be_at(b: &[u8], off: usize) -> Option<u32> {
    array_at(b, off).map(u32::from_be_bytes)
}

/// A big-endian `u64` at `off`.
#[inline]
pub fn u64_be_at(b: &[u8], off: usize) -> Option<u64> {
    array_at(b, off).map(u64::from_be_bytes)
}

/// Reads a byte string front to back. Each read checks what is left
/// first; the position says where a failure happened.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes read so far.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    #[inline]
    pub fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Everything not read yet.
    #[inline]
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }

    /// The next `N` bytes as an array.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// One byte.
    #[inline]
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    /// A big-endian `u16`.
    #[inline]
    pub fn u16_be(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    #[inline]
    pub fn u32_be(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    #[inline]
    pub fn u64_be(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// A little-endian `u16`.
    #[inline]
    pub fn u16_le(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// A little-endian `u32`.
    #[inline]
    pub fn u32_le(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// A little-endian `u64`.
    #[inline]
    pub fn u64_le(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_in_order_and_stops_at_the_end() {
        let b = [1u8, 0, 2, 0, 0, 0, 9];
        let mut c = Cursor::new(&b);
        assert_eq!(c.u16_le(), Some(1));
        assert_eq!(c.u32_le(), Some(2));
        assert_eq!(c.left(), 1);
        assert_eq!(c.u16_le(), None);
        assert_eq!(c.u8(), Some(9));
        assert_eq!(c.u8(), None);
        assert_eq!(u32_be_at(&b, 3), Some(9));
        assert_eq!(u32_be_at(&b, 4), None);
        assert_eq!(array_at::<2>(&b, usize::MAX), None);
    }

    proptest! {
        #[test]
        fn arbitrary_reads_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40), n in any::<usize>(), off in any::<usize>()) {
            let mut c = Cursor::new(&b);
            let _ = c.take(n);
            let _ = c.u64_be();
            let _ = c.rest();
            let _ = u64_le_at(&b, off);
            prop_assert!(c.left() == 0 || c.pos() <= b.len());
        }
    }
}
