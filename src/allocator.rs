//! The process's memory allocator: mimalloc instead of glibc's malloc.
//!
//! A search allocates and frees many small buffers on each search thread, and indexing
//! allocates per term; with mimalloc the load benchmark serves 9% more suggestions per
//! second and `deflect index` runs 7% faster (benches/BENCHMARKS.md, "Ninth run").
//! Declared in the library, not in `main.rs`, so the tests and the in-process
//! benchmarks run on the allocator the binary runs on.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
