//! `ThreadName`: how the pool's threads are named (`thread_name` or
//! `thread_name_fn`).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// How the pool's threads are named: `thread_name` or `thread_name_fn`.
pub(crate) enum ThreadName {
    /// Worker `i` is `{prefix}-{i}`, spare `k` is `{prefix}-spare-{k}`.
    Prefix(String),
    /// Every thread is named by the function, with its slot's index.
    Fn(Box<dyn Fn(usize) -> String + Send + Sync + 'static>),
}

impl ThreadName {
    /// The name of worker `index`.
    pub(crate) fn worker(&self, index: usize) -> String {
        match self {
            ThreadName::Prefix(prefix) => format!("{prefix}-{index}"),
            ThreadName::Fn(name) => name(index),
        }
    }

    /// The name of the spare of rank `rank`, in slot `slot`; `None` (no
    /// name) if the function panics or gives a name with a NUL byte: the
    /// spare is started by a blocked worker, inside a task.
    pub(crate) fn spare(&self, rank: usize, slot: usize) -> Option<String> {
        match self {
            ThreadName::Prefix(prefix) => Some(format!("{prefix}-spare-{rank}")),
            ThreadName::Fn(name) => catch_unwind(AssertUnwindSafe(|| name(slot))).ok(),
        }
        .filter(|name| !name.contains('\0'))
    }
}

impl std::fmt::Debug for ThreadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThreadName::Prefix(prefix) => write!(f, "{prefix:?}"),
            ThreadName::Fn(_) => f.write_str("<thread_name_fn>"),
        }
    }
}
