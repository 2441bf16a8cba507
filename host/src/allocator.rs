//! Tuning of the C allocator for the transfer engine's memory pattern.
//!
//! A transfer moves data in SFTP messages of up to 255 KiB, several of them allocated and
//! freed per millisecond (by russh-sftp as it parses replies, and by the engine as it
//! hands blocks to the local writer). glibc's defaults serve allocations over 128 KiB
//! with a fresh `mmap` and give freed memory at the top of the heap back to the kernel
//! once 128 KiB are free, so every message costs page faults, page clearing and an
//! `munmap`. Measured on one 256 MiB download over loopback (`perf stat -e
//! task-clock,page-faults` on `mcpssh call scp_download`): 38 000–57 000 page faults and
//! 500–540 ms of CPU with the defaults, 2 200–3 300 faults and 340–380 ms with the
//! thresholds below. The cost in memory is at most [`TRIM_THRESHOLD`] kept per arena.

/// Allocations up to this size come from the heap rather than from their own `mmap`.
pub const MMAP_THRESHOLD: usize = 1024 * 1024;

/// Free memory at the top of a heap is returned to the kernel only beyond this size.
pub const TRIM_THRESHOLD: usize = 4 * 1024 * 1024;

/// Applies [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] to the process's allocator (glibc
/// only; elsewhere nothing). The `mcpssh` binary calls it first thing; a program that
/// embeds the server may call it too. Idempotent.
pub fn tune_for_transfers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; any value is valid for these.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}
