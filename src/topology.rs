//! Which cores the process may use, where to pin each worker, and in which
//! order a worker visits the others when it steals (nearest first).

use std::fs;

/// The cores in this process's affinity mask, in ascending order, or `None`
/// where the platform cannot tell.
pub(crate) fn allowed_cores() -> Option<Vec<usize>> {
    let mut cores = crate::sync::affinity_mask()?;
    cores.sort_unstable();
    cores.dedup();
    if cores.is_empty() {
        None
    } else {
        Some(cores)
    }
}

/// The default number of workers: one per allowed core.
pub(crate) fn default_workers() -> usize {
    match allowed_cores() {
        Some(cores) => cores.len(),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Where a core sits: its package (socket) and its physical core, read from
/// Linux's sysfs. Two logical CPUs with the same pair are SMT siblings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Place {
    package: Option<u32>,
    core: Option<u32>,
}

fn read_u32(path: &str) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn place_of(cpu: usize) -> Place {
    let base = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
    Place {
        package: read_u32(&format!("{base}/physical_package_id")),
        core: read_u32(&format!("{base}/core_id")),
    }
}

/// How far apart two logical CPUs are, smaller is nearer: the same CPU, SMT
/// siblings (shared L1/L2), the same package (shared L3), another package;
/// ties broken by CPU number distance.
fn distance(a: usize, b: usize, place_a: Place, place_b: Place) -> (u8, usize) {
    let tier = if a == b {
        0
    } else if place_a.package.is_some() && place_a == place_b {
        1
    } else if place_a.package.is_some() && place_a.package == place_b.package {
        2
    } else {
        3
    };
    (tier, a.abs_diff(b))
}

/// For each worker, the other workers in the order it should try to steal
/// from them. `cores[i]` is the CPU worker `i` runs on, if pinned.
pub(crate) fn victim_orders(cores: &[Option<usize>]) -> Vec<Box<[usize]>> {
    let n = cores.len();
    let places: Vec<Option<Place>> = cores.iter().map(|c| c.map(place_of)).collect();
    (0..n)
        .map(|me| {
            let mut others: Vec<usize> = (0..n).filter(|&other| other != me).collect();
            // Ring distance between worker indices: the tie-breaker, and the
            // whole order when workers are not pinned.
            let ring = |other: usize| {
                let d = other.abs_diff(me);
                d.min(n - d)
            };
            others.sort_by_key(|&other| match (cores[me], cores[other]) {
                (Some(a), Some(b)) => {
                    let pa = places[me].unwrap_or(Place {
                        package: None,
                        core: None,
                    });
                    let pb = places[other].unwrap_or(Place {
                        package: None,
                        core: None,
                    });
                    let (tier, gap) = distance(a, b, pa, pb);
                    (tier, gap, ring(other))
                }
                _ => (0, 0, ring(other)),
            });
            others.into_boxed_slice()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpinned_order_is_ring_distance() {
        let orders = victim_orders(&[None; 5]);
        assert_eq!(&*orders[0], &[1, 4, 2, 3]);
        assert_eq!(&*orders[2], &[1, 3, 0, 4]);
    }

    #[test]
    fn oversubscribed_workers_on_the_same_core_come_first() {
        // Workers 0 and 2 share CPU 0, workers 1 and 3 share CPU 1.
        let orders = victim_orders(&[Some(0), Some(1), Some(0), Some(1)]);
        assert_eq!(orders[0][0], 2);
        assert_eq!(orders[1][0], 3);
    }

    #[test]
    fn sibling_tiers_order_before_distance() {
        let same_core = Place {
            package: Some(0),
            core: Some(3),
        };
        let other_core = Place {
            package: Some(0),
            core: Some(4),
        };
        let other_package = Place {
            package: Some(1),
            core: Some(3),
        };
        assert!(distance(0, 9, same_core, same_core) < distance(0, 1, same_core, other_core));
        assert!(distance(0, 9, same_core, other_core) < distance(0, 1, same_core, other_package));
    }
}
