//! A build that fails part-way: the first workers start, a later one cannot.
//! `build` must report the index of the worker that failed, and stop and
//! join the workers it had already started.
//!
//! The failure is made real by lowering this process's address-space limit
//! (RLIMIT_AS) so that exactly two large worker stacks fit. That limit is
//! process-wide, which is why this file holds a single test: no other test
//! may run in this process while it is lowered.

#[cfg(target_os = "linux")]
mod support;

#[cfg(target_os = "linux")]
#[test]
fn spawn_failure_after_some_workers_started_joins_them() {
    use corepool::{BuildError, Pool};

    const PREFIX: &str = "partial";
    const GIB: u64 = 1 << 30;
    const STACK: usize = 1 << 30;

    let _watchdog = support::Watchdog::new("spawn_failure_after_some_workers_started_joins_them");
    let vm_size_kib: u64 = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("VmSize in /proc/self/status");

    let threads_before = support::thread_count();
    let mut original = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `original` is a valid, writable rlimit.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut original) };
    assert_eq!(read, 0);
    // Room for two 1 GiB stacks plus 768 MiB of slack (the workers' malloc
    // arenas, guard pages, the test harness), but not for a third stack.
    let limit = vm_size_kib * 1024 + 2 * GIB + 3 * GIB / 4;
    if original.rlim_cur != libc::RLIM_INFINITY && original.rlim_cur < limit {
        eprintln!("RLIMIT_AS already below {limit}: skipping");
        return;
    }
    let lowered = libc::rlimit {
        rlim_cur: limit,
        rlim_max: original.rlim_max,
    };
    // SAFETY: `lowered` is a valid rlimit; lowering the soft limit is always allowed.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_AS, &lowered) };
    assert_eq!(set, 0);

    let result = Pool::builder()
        .workers(4)
        .thread_name(PREFIX)
        .stack_size(STACK)
        .build();

    // SAFETY: `original` is the valid rlimit read above.
    let restored = unsafe { libc::setrlimit(libc::RLIMIT_AS, &original) };
    assert_eq!(restored, 0);

    let err = match result {
        Ok(pool) => panic!(
            "built {} workers with 1 GiB stacks under the limit",
            pool.workers()
        ),
        Err(err) => err,
    };
    let BuildError::Spawn {
        worker, stack_size, ..
    } = &err
    else {
        panic!("expected Spawn, got {err:?}");
    };
    assert_eq!(*worker, 2, "workers 0 and 1 fit, worker 2 does not: {err}");
    assert_eq!(*stack_size, Some(STACK));
    assert!(
        err.to_string().contains("could not start worker thread 2"),
        "{err}"
    );
    // Workers 0 and 1 had started; they must have been told to exit and
    // joined. (Counting threads, not just looking for their names: a thread
    // names itself only once it runs, so a leaked one may still be unnamed.)
    support::assert_thread_count_returns_to(threads_before);
    support::assert_no_threads_named(PREFIX);
}
