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

use std::sync::Mutex;
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

/// The shortest time between two trims by [`release_after_flush`].
pub const MIN_TRIM_INTERVAL: Duration = Duration::from_secs(5);

static LAST_TRIM: Mutex<Option<Instant>> = Mutex::new(None);

/// [`release_free_memory`], unless the last trim was less than
/// [`MIN_TRIM_INTERVAL`] ago; returns how long it took, if it ran. Under
/// bulk ingest a flush runs every fraction of a second and its memory is
/// reused at once, while each trim locks the arenas the writers allocate
/// from: trimming after every flush cost ~9 % of bulk ingest throughput in
/// an A/B run, at most every 5 s ~3 % (docs/PERFORMANCE.md, "Ingest on the
/// final commit"). A plant at a steady rate flushes every few seconds or
/// more, and every such flush still trims.
pub fn release_after_flush() -> Option<Duration> {
    {
        let mut last = LAST_TRIM.lock().expect("trim clock");
        if last.is_some_and(|t| t.elapsed() < MIN_TRIM_INTERVAL) {
            return None;
        }
        *last = Some(Instant::now());
    }
    Some(release_free_memory())
}
