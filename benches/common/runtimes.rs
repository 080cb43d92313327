//! The runtimes under test behind one trait, each used the way its own
//! documentation recommends: corepool `submit` (`corepool::submit` from
//! inside), rayon `ThreadPool::spawn` (`rayon::spawn` from inside), tokio
//! multi-thread `Runtime::spawn` (`tokio::spawn` from inside), threadpool
//! `execute`, executors' `crossbeam_workstealing_pool` (`Executor::execute`,
//! from inside too, on a clone of the pool), and the Go-style pool. Every
//! one gets the same worker count.
//!
//! No runtime pays an allocation that corepool does not: a task is the
//! closure as given (corepool, rayon, threadpool, executors and the Go pool
//! box it once; tokio allocates its task cell once, with the closure inside
//! an `async` block), and tasks capture `&'static` state, not reference
//! counts (executors' tasks that submit capture a pool clone, as
//! threadpool's do: that is how both crates submit from inside).

use crate::common::gopool::{self, GoPool, Job};

/// A pool that runs `FnOnce() + Send + 'static` tasks.
pub trait Runtime: Sync + Sized {
    /// What a task captures to submit more tasks from inside the pool.
    type Spawner: Clone + Send + 'static;

    /// The label in tables and charts.
    fn name(&self) -> String;

    /// Submits from a thread outside the pool (blocking while full, for the
    /// bounded pools).
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F);

    /// A spawner for tasks to capture.
    fn spawner(&self) -> Self::Spawner;

    /// Submits from inside a task running on this pool.
    fn spawn_inside<F: FnOnce() + Send + 'static>(spawner: &Self::Spawner, f: F);

    /// `Some(why)` when tasks that submit many tasks can deadlock this
    /// runtime, which then sits out those workloads.
    fn inside_spawn_deadlocks(&self) -> Option<&'static str> {
        None
    }
}

/// corepool, pinned workers, with the default or a given capacity.
pub struct Corepool {
    pool: corepool::Pool,
    label: String,
}

impl Corepool {
    /// The default configuration (capacity W × `DEFAULT_CAPACITY_PER_WORKER`).
    pub fn new(workers: usize) -> Self {
        let pool = corepool::Pool::builder()
            .workers(workers)
            .build()
            .expect("build corepool");
        Corepool {
            pool,
            label: "corepool".to_owned(),
        }
    }

    /// A given capacity, labelled `corepool cap=Wxk`.
    pub fn with_capacity_per_worker(workers: usize, per_worker: usize) -> Self {
        let pool = corepool::Pool::builder()
            .workers(workers)
            .queue_capacity(workers * per_worker)
            .build()
            .expect("build corepool");
        Corepool {
            pool,
            label: format!("corepool cap=Wx{per_worker}"),
        }
    }

    /// The default capacity, workers not pinned: for telling pinning's
    /// effect apart on an oversubscribed machine.
    pub fn unpinned(workers: usize) -> Self {
        let pool = corepool::Pool::builder()
            .workers(workers)
            .pin_workers(false)
            .build()
            .expect("build corepool");
        Corepool {
            pool,
            label: "corepool unpinned".to_owned(),
        }
    }

    /// The pool itself.
    pub fn pool(&self) -> &corepool::Pool {
        &self.pool
    }
}

impl Runtime for Corepool {
    type Spawner = CorepoolSpawner;

    fn name(&self) -> String {
        self.label.clone()
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        if self.pool.submit(f).is_err() {
            panic!("corepool shut down");
        }
    }

    fn spawner(&self) -> CorepoolSpawner {
        CorepoolSpawner
    }

    fn spawn_inside<F: FnOnce() + Send + 'static>(_: &CorepoolSpawner, f: F) {
        // Called on a worker of the bench's pool: onto its own deque.
        corepool::submit(f);
    }
}

/// `corepool::submit` finds the pool of the calling worker by itself, as
/// `rayon::spawn` and `tokio::spawn` do.
#[derive(Clone, Copy)]
pub struct CorepoolSpawner;

/// corepool with the default configuration, whose tasks capture a
/// `Handle` clone and submit through it (`handle.submit(f)` from inside),
/// instead of calling `corepool::submit`: every hop then pays the
/// reference count of the clone. Shows what capturing a `Handle` costs.
pub struct CorepoolHandle {
    inner: Corepool,
}

impl CorepoolHandle {
    /// The default configuration.
    pub fn new(workers: usize) -> Self {
        CorepoolHandle {
            inner: Corepool::new(workers),
        }
    }
}

impl Runtime for CorepoolHandle {
    type Spawner = corepool::Handle;

    fn name(&self) -> String {
        "corepool via Handle clone".to_owned()
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.inner.spawn(f);
    }

    fn spawner(&self) -> corepool::Handle {
        self.inner.pool.handle()
    }

    fn spawn_inside<F: FnOnce() + Send + 'static>(spawner: &corepool::Handle, f: F) {
        if spawner.submit(f).is_err() {
            panic!("corepool shut down");
        }
    }
}

/// A rayon `ThreadPool` of W threads.
pub struct Rayon {
    pool: rayon::ThreadPool,
}

impl Rayon {
    /// W threads.
    pub fn new(workers: usize) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("rayon-{i}"))
            .build()
            .expect("build rayon pool");
        Rayon { pool }
    }

    /// The pool itself (for `install`, `join`, `scope`).
    pub fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }
}

/// `rayon::spawn` finds the pool of the calling worker by itself.
#[derive(Clone, Copy)]
pub struct RayonSpawner;

impl Runtime for Rayon {
    type Spawner = RayonSpawner;

    fn name(&self) -> String {
        "rayon".to_owned()
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.pool.spawn(f);
    }

    fn spawner(&self) -> RayonSpawner {
        RayonSpawner
    }

    fn spawn_inside<F: FnOnce() + Send + 'static>(_: &RayonSpawner, f: F) {
        rayon::spawn(f);
    }
}

/// A tokio multi-thread runtime of W workers; tasks are spawned as
/// futures (`async move { f() }`), or with `spawn_blocking` when
/// [`Tokio::blocking`] built it.
pub struct Tokio {
    runtime: tokio::runtime::Runtime,
    blocking: bool,
}

impl Tokio {
    /// W workers; `spawn` spawns futures.
    pub fn new(workers: usize) -> Self {
        Tokio {
            runtime: Self::runtime(workers),
            blocking: false,
        }
    }

    /// W workers and at most W blocking threads; `spawn` uses
    /// `spawn_blocking` (tokio's answer for work that blocks).
    pub fn blocking(workers: usize) -> Self {
        Tokio {
            runtime: Self::runtime(workers),
            blocking: true,
        }
    }

    fn runtime(workers: usize) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .max_blocking_threads(workers)
            .thread_name("tokio")
            .build()
            .expect("build tokio runtime")
    }

    /// The runtime itself.
    pub fn runtime_ref(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }
}

/// `tokio::spawn` finds the runtime of the calling task by itself.
#[derive(Clone, Copy)]
pub struct TokioSpawner;

impl Runtime for Tokio {
    type Spawner = TokioSpawner;

    fn name(&self) -> String {
        if self.blocking {
            "tokio spawn_blocking".to_owned()
        } else {
            "tokio".to_owned()
        }
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        if self.blocking {
            drop(self.runtime.spawn_blocking(f));
        } else {
            drop(self.runtime.spawn(async move { f() }));
        }
    }

    fn spawner(&self) -> TokioSpawner {
        TokioSpawner
    }

    fn spawn_inside<F: FnOnce() + Send + 'static>(_: &TokioSpawner, f: F) {
        drop(tokio::spawn(async move { f() }));
    }
}

/// The `threadpool` crate: W threads on an unbounded `mpsc` channel.
pub struct Threadpool {
    pool: threadpool::ThreadPool,
}

impl Threadpool {
    /// W threads.
    pub fn new(workers: usize) -> Self {
        Threadpool {
            pool: threadpool::ThreadPool::with_name("threadpool".to_owned(), workers),
        }
    }
}

impl Runtime for Threadpool {
    type Spawner = threadpool::ThreadPool;

    fn name(&self) -> String {
        "threadpool".to_owned()
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.pool.execute(f);
    }

    fn spawner(&self) -> threadpool::ThreadPool {
        self.pool.clone()
    }

    fn spawn_inside<F: FnOnce() + Send + 'static>(spawner: &threadpool::ThreadPool, f: F) {
        spawner.execute(f);
    }
}

/// The `executors` crate's work-stealing pool
/// (`crossbeam_workstealing_pool`): a deque per worker, a global injector
/// for outside threads, parked workers woken one per outside submission.
/// Built as its documentation recommends, `small_pool(W)` (up to 32
/// threads, the parker statically dispatched), `pool_with_auto_parker(W)`
/// beyond that; workers unpinned (its `thread-pinning` feature is off).
/// Dropping it calls `shutdown`, which stops the workers.
pub struct Executors {
    pool: ExecutorsPool,
}

/// A handle to an [`Executors`] pool, of whichever parker it was built with.
#[derive(Clone)]
pub enum ExecutorsPool {
    /// `small_pool(W)`, W ≤ 32.
    Small(
        executors::crossbeam_workstealing_pool::ThreadPool<
            executors::parker::StaticParker<executors::parker::SmallThreadData>,
        >,
    ),
    /// `pool_with_auto_parker(W)`, W > 32.
    Auto(executors::crossbeam_workstealing_pool::ThreadPool<executors::parker::DynParker>),
}

impl ExecutorsPool {
    fn execute<F: FnOnce() + Send + 'static>(&self, f: F) {
        use executors::Executor;
        match self {
            ExecutorsPool::Small(pool) => pool.execute(f),
            ExecutorsPool::Auto(pool) => pool.execute(f),
        }
    }
}

impl Executors {
    /// W threads.
    pub fn new(workers: usize) -> Self {
        use executors::crossbeam_workstealing_pool::{pool_with_auto_parker, small_pool};
        // `SmallThreadData` tracks parked threads in one 32-bit word.
        let pool = if workers <= 32 {
            ExecutorsPool::Small(small_pool(workers))
        } else {
            ExecutorsPool::Auto(pool_with_auto_parker(workers))
        };
        Executors { pool }
    }
}

impl Drop for Executors {
    fn drop(&mut self) {
        use executors::Executor;
        // Every bench waits for its tasks before dropping the runtime, so
        // the queues are empty and the workers stop at once; the pool would
        // otherwise only warn and leave its threads to notice by themselves.
        let stopped = match &self.pool {
            ExecutorsPool::Small(pool) => pool.shutdown_borrowed(),
            ExecutorsPool::Auto(pool) => pool.shutdown_borrowed(),
        };
        if let Err(why) = stopped {
            eprintln!("executors: {why}");
        }
    }
}

impl Runtime for Executors {
    type Spawner = ExecutorsPool;

    fn name(&self) -> String {
        "executors".to_owned()
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.pool.execute(f);
    }

    fn spawner(&self) -> ExecutorsPool {
        self.pool.clone()
    }

    fn spawn_inside<F: FnOnce() + Send + 'static>(spawner: &ExecutorsPool, f: F) {
        // On a worker, `execute` pushes onto that worker's own deque.
        spawner.execute(f);
    }
}

/// The Go-style pool of [`gopool`].
pub struct Go {
    pool: GoPool,
}

impl Go {
    /// W threads, W × 10 slots.
    pub fn new(workers: usize) -> Self {
        Go {
            pool: GoPool::new(workers),
        }
    }
}

impl Runtime for Go {
    type Spawner = crossbeam_channel::Sender<Job>;

    fn name(&self) -> String {
        "go-style".to_owned()
    }

    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.pool.submit(f);
    }

    fn spawner(&self) -> crossbeam_channel::Sender<Job> {
        self.pool.sender()
    }

    fn spawn_inside<F: FnOnce() + Send + 'static>(spawner: &crossbeam_channel::Sender<Job>, f: F) {
        gopool::submit(spawner, f);
    }

    fn inside_spawn_deadlocks(&self) -> Option<&'static str> {
        Some(
            "deadlocks: workers block sending to their own full channel (W×10 slots) \
             and none is left to receive",
        )
    }
}

/// Runs `body` once per runtime, building each one just before and
/// dropping it just after, so idle pools never compete with the one
/// measured. The macro form lets `body` be generic over the runtime type.
#[macro_export]
macro_rules! for_each_runtime {
    ($workers:expr, |$rt:ident| $body:expr) => {{
        let workers = $workers;
        {
            let $rt = $crate::common::runtimes::Corepool::new(workers);
            $body;
        }
        {
            let $rt = $crate::common::runtimes::Rayon::new(workers);
            $body;
        }
        {
            let $rt = $crate::common::runtimes::Tokio::new(workers);
            $body;
        }
        {
            let $rt = $crate::common::runtimes::Threadpool::new(workers);
            $body;
        }
        {
            let $rt = $crate::common::runtimes::Executors::new(workers);
            $body;
        }
        {
            let $rt = $crate::common::runtimes::Go::new(workers);
            $body;
        }
    }};
}
