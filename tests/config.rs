//! Configuration that shows on the running pool: worker count, thread
//! names, and which core each worker is pinned to.

mod support;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};

use corepool::{Pool, DEFAULT_CAPACITY_PER_WORKER};
use support::{visit_every_worker, Watchdog, WATCHDOG};

#[test]
fn thread_names_are_prefix_dash_index() {
    let _watchdog = Watchdog::new("thread_names_are_prefix_dash_index");
    let pool = Pool::builder().workers(2).thread_name("x").build().unwrap();
    let mut names: Vec<String> = visit_every_worker(&pool).into_keys().collect();
    names.sort();
    assert_eq!(names, ["x-0", "x-1"]);
}

#[test]
fn default_thread_names_and_capacity() {
    let _watchdog = Watchdog::new("default_thread_names_and_capacity");
    let pool = Pool::builder().workers(3).build().unwrap();
    assert_eq!(pool.workers(), 3);
    assert_eq!(pool.capacity(), 3 * DEFAULT_CAPACITY_PER_WORKER);
    let mut names: Vec<String> = visit_every_worker(&pool).into_keys().collect();
    names.sort();
    assert_eq!(names, ["corepool-0", "corepool-1", "corepool-2"]);
}

#[test]
fn unpinned_workers_report_no_core() {
    let pool = Pool::builder()
        .workers(3)
        .pin_workers(false)
        .build()
        .unwrap();
    assert_eq!(pool.worker_cores(), &[None, None, None]);
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use support::{cpus_allowed, parse_cpu_list};

    fn process_cpus() -> Vec<usize> {
        let cpus = cpus_allowed("/proc/self/status");
        assert!(!cpus.is_empty());
        cpus
    }

    #[test]
    fn cpu_list_parser() {
        assert_eq!(parse_cpu_list("0-1\n"), [0, 1]);
        assert_eq!(parse_cpu_list("0,2-4,7"), [0, 2, 3, 4, 7]);
        assert_eq!(parse_cpu_list("5"), [5]);
    }

    #[test]
    fn default_pool_has_one_worker_per_allowed_core() {
        let pool = Pool::new().unwrap();
        assert_eq!(pool.workers(), process_cpus().len());
        assert_eq!(pool.worker_cores().len(), pool.workers());
    }

    /// Pinned round-robin over the process's cores, and each worker thread
    /// really is confined to the core it reports.
    fn check_pinning(workers: usize, prefix: &'static str) {
        let _watchdog = Watchdog::new("check_pinning");
        let cpus = process_cpus();
        let pool = Pool::builder()
            .workers(workers)
            .pin_workers(true)
            .thread_name(prefix)
            .build()
            .unwrap();
        let cores = pool.worker_cores();
        assert_eq!(cores.len(), workers);
        for (i, core) in cores.iter().enumerate() {
            let core = core.unwrap_or_else(|| panic!("worker {i} was not pinned: {cores:?}"));
            assert!(
                cpus.contains(&core),
                "worker {i} on core {core}, not in {cpus:?}"
            );
            assert_eq!(
                core,
                cpus[i % cpus.len()],
                "round-robin: {cores:?} over {cpus:?}"
            );
        }

        // Ask every worker (all at once, so each task is on a distinct
        // worker) for its name and its own affinity mask.
        let together = Arc::new(Barrier::new(workers));
        let (tx, rx) = mpsc::channel();
        for _ in 0..workers {
            let (together, tx) = (together.clone(), tx.clone());
            pool.submit(move || {
                together.wait();
                let name = std::thread::current().name().unwrap().to_owned();
                tx.send((name, cpus_allowed("/proc/thread-self/status")))
                    .unwrap();
            })
            .unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..workers {
            let (name, mask) = rx.recv_timeout(WATCHDOG).expect("every worker answers");
            let index: usize = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("worker name {name}"));
            assert_eq!(
                mask,
                [cores[index].unwrap()],
                "worker {name}'s affinity mask"
            );
            seen.push(index);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..workers).collect::<Vec<_>>());
    }

    #[test]
    fn pinned_workers_sit_on_allowed_cores() {
        check_pinning(process_cpus().len(), "pin");
    }

    #[test]
    fn more_workers_than_cores_are_pinned_round_robin() {
        check_pinning(process_cpus().len() + 3, "over");
    }
}
