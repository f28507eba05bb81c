//! CPU cache hints: the one place outside `xsk` that uses `unsafe`, for the prefetch
//! instruction alone.
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

/// Ask for the cache lines of `data`, at most `max_lines` of them from its start.
#[inline(always)]
pub fn prefetch_bytes(data: &[u8], max_lines: usize) {
    // Plain arithmetic rather than `chunks().take()`: this runs for every received frame, and
    // the iterator's bookkeeping cost several times the prefetches themselves.
    for i in 0..lines(data.len(), max_lines) {
        // `i * LINE < data.len()`: the address is inside `data`.
        prefetch_addr(data.as_ptr().wrapping_add(i * LINE));
    }
}

/// Ask for the cache line at address `at`, which may be stale (memory since freed): the
/// address is never dereferenced and a prefetch never faults, so any value is harmless.
#[inline(always)]
pub fn prefetch_at(at: usize) {
    prefetch_addr(std::ptr::without_provenance(at));
}

/// Cache lines covering `len` bytes from a line start, at most `max`.
#[inline(always)]
fn lines(len: usize, max: usize) -> usize {
    len.div_ceil(LINE).min(max)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of the data is asked for, a partial last one included, up to the cap.
    #[test]
    fn lines_cover_the_data_up_to_the_cap() {
        for (len, max, want) in [
            (0, 16, 0),
            (1, 16, 1),
            (63, 16, 1),
            (64, 16, 1),
            (65, 16, 2),
            (640, 16, 10),
            (641, 16, 11),
            (2048, 10, 10),
            (100, 0, 0),
        ] {
            assert_eq!(lines(len, max), want, "len {len} max {max}");
        }
    }

    /// The hints accept any size, including empty and partial lines, and change nothing.
    #[test]
    fn hints_leave_data_unchanged() {
        let data: Vec<u8> = (0..=255).collect();
        for len in [0, 1, 63, 64, 65, 256] {
            prefetch_bytes(&data[..len], 16);
        }
        prefetch_bytes(&data, 0);
        let x = 7u64;
        prefetch(&x);
        assert_eq!(x, 7);
        assert_eq!(data, (0..=255).collect::<Vec<u8>>());
    }
}
