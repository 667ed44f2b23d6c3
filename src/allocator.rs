//! The process's memory allocator: mimalloc instead of glibc's malloc, and whether its
//! memory may come in transparent huge pages.
//!
//! A search allocates and frees many small buffers on each search thread, and indexing
//! allocates per term; mimalloc does both faster (benches/BENCHMARKS.md, "Ninth run").
//! Declared in the library, not in `main.rs`, so the tests and the in-process
//! benchmarks run on the allocator the binary runs on.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stops the kernel from backing this process's memory with transparent huge pages from
/// now on.
///
/// mimalloc asks for huge pages where the kernel allows it ("madvise" mode, Debian's
/// default). They make offline indexing faster, but a server that keeps memory for
/// weeks pays for them in resident memory: with them `deflect serve` held 66-75 MiB of
/// heap on the 100k-document benchmark instead of 34-37 MiB (glibc's malloc: 23-25),
/// which took it over its 300 MB goal. The index files are mapped, not allocated, so
/// they are not affected.
pub fn use_small_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag of the
    // calling process; a failure (an old kernel) leaves huge pages allowed, which costs
    // memory, not correctness.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn after_use_small_pages_the_kernel_gives_this_process_no_huge_pages() {
        super::use_small_pages();

        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let thp_enabled = status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .map(str::trim);
        assert_eq!(thp_enabled, Some("0"), "{status}");
    }
}
