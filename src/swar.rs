//! Byte tests on eight bytes at once, in a `u64` ("SIMD within a register"): the lexer's scan
//! of plain words and the JSON writer's check for characters to escape, where most runs are
//! a few to a few dozen bytes, too short for vector instructions to pay.
//!
//! Each test marks the high bit of every byte that passes, and may also mark bytes after the
//! first one that passes, never before it: the answer "any?" is exact, and so is the first
//! byte marked (`trailing_zeros() / 8` of a word read with `u64::from_le_bytes`).

const ONES: u64 = u64::from_le_bytes([1; 8]);

/// The high bit of each byte.
pub(crate) const HIGH: u64 = u64::from_le_bytes([0x80; 8]);

/// The bytes of `word` below `n` (`n <= 0x80`), marked: the classic "has a zero byte" test,
/// `(x - 0x01…) & !x & 0x80…`, with `n` for 1.
pub(crate) fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// The bytes of `word` equal to `b`, marked.
pub(crate) fn equal(word: u64, b: u8) -> u64 {
    below(word ^ (ONES * u64::from(b)), 1)
}

/// The eight bytes at `at` as a word, or `None` if fewer remain.
pub(crate) fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let eight = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(eight.try_into().expect("8 bytes")))
}
