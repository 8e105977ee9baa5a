//! Giving freed memory back to the operating system after a flush.
//!
//! A flush frees the buffer it wrote (every request's batches, the sorted
//! copy, the Parquet encoder's pages) all at once. glibc's allocator keeps
//! such memory in its per-thread arenas for reuse and returns only what sits
//! at the top of a heap, so the resident size stays near the high-water mark
//! of the largest flush even when little is live. Measured on the soak
//! (docs/PERFORMANCE.md, "Where the memory goes"), about 70 % of the
//! server's RSS was such freed memory. `malloc_trim` walks the arenas and
//! releases their free pages; with another C library the call is left out.

use std::time::{Duration, Instant};

/// Returns the allocator's free pages to the operating system and how long
/// that took. Live allocations are untouched; the call only costs time
/// (it locks each arena in turn while it walks it), so callers run it off the
/// async runtime and after, not during, the work that freed the memory.
pub fn release_free_memory() -> Duration {
    let started = Instant::now();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds as free;
    // it takes the allocator's own locks and is safe from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
    started.elapsed()
}
