//! Where the commit path runs: the writer's thread and sled's I/O threads
//! share one CPU.
//!
//! Every commit hands work from the writer to a sled I/O thread and back,
//! twice (sled 0.34 writes a batch's manifest and its records separately),
//! and each hand-off wakes all seven of sled's I/O threads. Left to the
//! scheduler, those wake-ups land on whichever CPU is free, which under load
//! is one that a connection worker is using to fan events out, and the
//! commit waits for it. Kept together on one CPU (the last one this process
//! may use), the hand-offs are cheap local wake-ups and the workers keep
//! the other CPUs to themselves. Measured on 2 cores with 500 monitors and
//! one driver in a closed loop, pinned against unpinned on the same build:
//! 6% more durable commands/s on average in one hour (342–435 against
//! 351–383 /s), 25% more in a busier one (379–427 against 290–354 /s).
//!
//! The connection workers are not pinned. With a single allowed CPU, or
//! where the system does not let a process set affinity (a seccomp filter,
//! another OS), nothing is pinned and the hub runs as before.

/// Pins the calling thread (the writer) and sled's I/O threads to the last
/// CPU this process may use. Returns that CPU, or why nothing was pinned.
pub fn pin_commit_path() -> Result<usize, String> {
    imp::pin_commit_path()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;

    /// The CPUs the calling thread may run on.
    pub(super) fn allowed_cpus() -> io::Result<Vec<usize>> {
        // SAFETY: `set` is a plain bit set owned by this frame; the kernel
        // writes at most `size_of::<cpu_set_t>()` bytes into it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: pid 0 is the calling thread; `set` is valid for `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
            .filter(|cpu| unsafe { libc::CPU_ISSET(*cpu, &set) })
            .collect())
    }

    /// Pins one thread (0: the calling thread) to one CPU.
    fn pin(tid: libc::pid_t, cpu: usize) -> io::Result<()> {
        // SAFETY: as in `allowed_cpus`; `cpu` comes from the allowed set, so
        // it is below CPU_SETSIZE.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut set) };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `set` is valid for `size` bytes and only read.
        if unsafe { libc::sched_setaffinity(tid, size, &set) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// This process's threads whose name starts with `prefix`.
    pub(super) fn threads_named(prefix: &str) -> Vec<libc::pid_t> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|task| {
                let tid = task.file_name().to_str()?.parse().ok()?;
                let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
                name.starts_with(prefix).then_some(tid)
            })
            .collect()
    }

    pub fn pin_commit_path() -> Result<usize, String> {
        let allowed = allowed_cpus().map_err(|e| format!("cannot read the CPU set: {e}"))?;
        let [.., _, last] = allowed[..] else {
            return Err("a single CPU: nothing to keep apart".into());
        };
        pin(0, last).map_err(|e| format!("cannot pin the writer: {e}"))?;
        // sled's I/O threads exist once the database is open; any it adds
        // later are started by the writer and inherit its CPU.
        for tid in threads_named("sled-io") {
            pin(tid, last).map_err(|e| format!("cannot pin sled's I/O thread {tid}: {e}"))?;
        }
        Ok(last)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn pin_commit_path() -> Result<usize, String> {
        Err("thread affinity is only set on Linux".into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The CPUs a thread may run on, from /proc.
    fn cpus_of(tid: &str) -> String {
        let status =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list")
            .trim()
            .to_string()
    }

    #[test]
    fn the_writer_and_sleds_threads_end_up_on_one_allowed_cpu() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = sled::open(dir.path()).expect("sled");
        db.insert(b"k", b"v").expect("insert");
        db.flush().expect("flush");
        let allowed = super::imp::allowed_cpus().expect("cpu set");
        let (result, writer_cpus) = std::thread::spawn(|| {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            (super::pin_commit_path(), cpus_of(&tid.to_string()))
        })
        .join()
        .expect("thread");
        match result {
            Ok(cpu) => {
                assert_eq!(Some(&cpu), allowed.last());
                assert_eq!(writer_cpus, cpu.to_string(), "the calling thread");
                let sled_threads = super::imp::threads_named("sled-io");
                assert!(!sled_threads.is_empty(), "sled has I/O threads");
                for tid in sled_threads {
                    assert_eq!(
                        cpus_of(&tid.to_string()),
                        cpu.to_string(),
                        "sled thread {tid}"
                    );
                }
            }
            // One CPU, or a sandbox that refuses affinity: nothing pinned.
            Err(why) => assert!(allowed.len() < 2 || why.contains("cannot"), "{why}"),
        }
        drop(db);
    }
}

/// Lowers the calling thread's CPU priority by `nice` steps (Linux: each
/// thread has its own nice value): for background work such as replication
/// that must not take CPU from the floor's fan-out when both want it.
/// Best effort: where it is not allowed, the thread keeps its priority.
pub fn lower_this_threads_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take plain integers and touch no memory
    // of ours.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) != 0 {
            log::debug!(
                "could not lower a background thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Hands the memory a large, short-lived computation freed (a report's
/// replay of the log) back to the system instead of keeping it in the
/// allocator's free lists: on a Pi, RSS is what the OOM killer counts.
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc's malloc at two arenas (its default is eight per core). Each
/// thread that allocates (tokio's workers, the writer, sled's threads, the
/// publisher) otherwise gets an arena of its own, and memory freed in one
/// cannot serve another: `bench customers` measured 146 MB at ready and
/// 162 MB after 2,000 searches with the default, 140 and 141 MB with two.
/// Called first thing in `main`, before any thread exists; an
/// `MALLOC_ARENA_MAX` in the environment wins.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets a glibc tunable; it takes no pointers.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
