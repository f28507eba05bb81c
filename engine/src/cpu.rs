//! CPU-level helpers: cache hints (the one place outside `xsk` that uses `unsafe`, for the
//! prefetch instruction alone) and short copies compiled without a library call.
//!
//! WHY: a worker decides on a received batch in two passes (`dhcp::Prepared`). Frames a NIC
//! wrote by DMA and a new client's word of the lease index filter are usually not in the
//! cache; asking for all of a batch's lines before the first is needed overlaps those misses.
//! A plain load would do the same in safe code, but a load that misses holds up every younger
//! instruction once the CPU's reorder window is full, so loads spread over a batch's work
//! would still wait one after the other; a prefetch retires at once and never faults.

/// Bytes per cache line on the targets xdhcp runs on.
pub const LINE: usize = 64;

/// Ask for the cache line holding `*value` (no effect on the value, never faults).
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_addr((value as *const T).cast());
}

/// Ask for the first `LINES` cache lines from the start of `data`, whatever its length.
///
/// WHY a fixed count: a prefetch past the end of `data` is a hint about memory that is never
/// read through it (it cannot fault), while a loop bounded by the length cost ~40 instructions
/// per frame; `LINES` constant hints are as many instructions.
#[inline(always)]
pub fn prefetch_lines<const LINES: usize>(data: &[u8]) {
    let p = data.as_ptr();
    for i in 0..LINES {
        prefetch_addr(p.wrapping_add(i * LINE));
    }
}

#[inline(always)]
pub fn prefetch_at(at: usize) {
    prefetch_addr(std::ptr::without_provenance(at));
}

/// Cache lines covering `len` bytes from a line start, at most `max`.
#[inline(always)]
fn prefetch_addr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` is unsafe only because it needs SSE, which every x86_64 CPU
        // has (it is in the target's baseline feature set). A prefetch is a hint: it does not
        // read into any register, cannot fault whatever the address, and changes no memory;
        // `p` comes from a live reference anyway.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // No stable prefetch intrinsic elsewhere: the hint is simply not given.
        let _ = p;
    }
}

/// `dst.copy_from_slice(src)` (same lengths) without a library call for the short values the
/// packet path copies (a client identifier is usually 7 to 16 bytes): 4 to 16 bytes are two
/// overlapping constant-size copies, where a variable-length copy calls `memcpy`.
#[inline]
pub fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() == n && (4..=16).contains(&n) {
        if n >= 8 {
            if let (Some(d), Some(s)) = (dst.first_chunk_mut::<8>(), src.first_chunk::<8>()) {
                *d = *s;
            }
            if let (Some(d), Some(s)) = (dst.last_chunk_mut::<8>(), src.last_chunk::<8>()) {
                *d = *s;
            }
        } else {
            if let (Some(d), Some(s)) = (dst.first_chunk_mut::<4>(), src.first_chunk::<4>()) {
                *d = *s;
            }
            if let (Some(d), Some(s)) = (dst.last_chunk_mut::<4>(), src.last_chunk::<4>()) {
                *d = *s;
            }
        }
    } else {
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of the data is asked for, a partial last one included, up to the cap.
    #[test]
    fn hints_leave_data_unchanged() {
        let data: Vec<u8> = (0..=255).collect();
        // Also past the end of short slices: a hint, never a read.
        for len in [0, 1, 63, 64, 65, 256] {
            prefetch_lines::<7>(&data[..len]);
        }
        prefetch_lines::<0>(&data);
        let x = 7u64;
        prefetch(&x);
        assert_eq!(x, 7);
        assert_eq!(data, (0..=255).collect::<Vec<u8>>());
    }

    #[test]
    fn copy_short_copies_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=src.len() {
            let mut dst = vec![0u8; n];
            copy_short(&mut dst, &src[..n]);
            assert_eq!(dst, &src[..n]);
        }
    }
}
