//! Memory hints for the shard's key state, the one place in the correlator that reaches
//! for CPU intrinsics and system calls (issue 4: at 1 M+ live keys the shard's time goes to
//! cache and TLB misses on its index and records). A hint never changes what the program
//! computes, only when and how memory arrives; where one is not available it does nothing.

/// Starts loading the cache line holding `p` into all cache levels. Any address is fine:
/// the hint is dropped rather than faulting.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `prefetcht0` is a hint that never faults and reads nothing the program
        // can observe; SSE is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Transparent huge pages are worth asking for from this many bytes on.
const HUGE: usize = 2 << 20;

/// Asks the kernel to back the whole 2 MiB pages inside `buf`'s allocation (its capacity,
/// not only its length) with huge pages (Linux,
/// `madvise(MADV_HUGEPAGE)`; honoured when THP is `always` or `madvise`): one TLB entry
/// per 2 MiB instead of per 4 KiB, so a random probe into a table of hundreds of MiB no
/// longer walks the page tables, and one page fault per 2 MiB as the table grows. Small
/// buffers are left alone.
pub fn advise_huge<T>(buf: &Vec<T>) {
    let bytes = buf.capacity() * std::mem::size_of::<T>();
    if bytes < 2 * HUGE {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = buf.as_ptr() as usize;
        let from = start.next_multiple_of(HUGE);
        let to = (start + bytes) / HUGE * HUGE;
        if to > from {
            // SAFETY: `[from, to)` lies inside `buf`'s allocation, which this process owns,
            // and is page-aligned; MADV_HUGEPAGE changes how those pages are backed, never
            // their contents, and on failure (no THP) nothing happens.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
            }
        }
    }
}
