//! Elastic sizing: the policy that decides how many workers should be
//! active, kept apart from the clock so it can be tested step by step.
//!
//! The rule is the one operators use on fixed pools: add a worker when the
//! queue has stayed above 80% full for an interval; retire one when some
//! worker has sat idle (parked) for a longer interval. Growth is quick
//! because a full queue means callers are blocking or being shed; shrinking
//! is slow because a retired worker costs nothing but a parked thread, and
//! flapping costs wake-ups.
//!
//! [`Autoscaler::observe`] is a pure function of the samples and the times
//! it is given. The pool's monitor thread feeds it real time every
//! [`AutoscalePolicy::tick`]; tests (and callers who drive it themselves
//! with `tick: None`) call [`Pool::autoscale_tick`](crate::Pool::autoscale_tick)
//! with whatever clock they like.

use std::time::{Duration, Instant};

/// When to grow and shrink. Build one with [`AutoscalePolicy::new`] and
/// adjust fields.
///
/// ```
/// use std::time::Duration;
/// let mut policy = corepool::AutoscalePolicy::new(2, 16);
/// policy.grow_above = 0.7;
/// policy.grow_after = Duration::from_millis(500);
/// let pool = corepool::Pool::builder().autoscale_policy(policy).build()?;
/// assert_eq!(pool.workers(), 2);
/// # Ok::<(), corepool::BuildError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AutoscalePolicy {
    /// Never fewer active workers than this (at least 1).
    pub min: usize,
    /// Never more active workers than this. Workers beyond the number of
    /// cores share cores (pinned round-robin): they serve blocking work.
    pub max: usize,
    /// Queue fill (0.0 to 1.0) at or above which the pool is under
    /// pressure. Default 0.8.
    pub grow_above: f64,
    /// How long the pressure must last before a worker is added. Default 1 s.
    pub grow_after: Duration,
    /// How long at least one worker must stay idle (parked) before one is
    /// retired. Default 10 s.
    pub shrink_after: Duration,
    /// Workers added or retired per decision, at least 1; any larger
    /// value, up to `usize::MAX`, goes at most to `max` or `min`.
    /// Default 1.
    pub step: usize,
    /// How often the pool's monitor thread samples and decides; `None`
    /// starts no thread, and the caller drives
    /// [`Pool::autoscale_tick`](crate::Pool::autoscale_tick). Default 100 ms.
    pub tick: Option<Duration>,
}

impl AutoscalePolicy {
    /// The default policy between `min` and `max` active workers.
    ///
    /// ```
    /// let policy = corepool::AutoscalePolicy::new(1, 8);
    /// assert_eq!(policy.grow_above, 0.8);
    /// ```
    pub fn new(min: usize, max: usize) -> Self {
        AutoscalePolicy {
            min,
            max,
            grow_above: 0.8,
            grow_after: Duration::from_secs(1),
            shrink_after: Duration::from_secs(10),
            step: 1,
            tick: Some(Duration::from_millis(100)),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.min == 0 {
            return Err("autoscale min must be at least 1".into());
        }
        if self.min > self.max {
            return Err(format!(
                "autoscale min ({}) is greater than max ({})",
                self.min, self.max
            ));
        }
        if !(self.grow_above > 0.0 && self.grow_above <= 1.0) {
            return Err(format!(
                "autoscale grow_above must be in (0, 1], got {}",
                self.grow_above
            ));
        }
        if self.step == 0 {
            return Err("autoscale step must be at least 1".into());
        }
        if self.tick == Some(Duration::ZERO) {
            return Err("autoscale tick must be longer than zero".into());
        }
        Ok(())
    }
}

/// What the autoscaler sees at one instant.
///
/// ```
/// let sample = corepool::LoadSample { fill: 0.9, active: 2, idle: 0 };
/// assert!(sample.fill > 0.8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadSample {
    /// Queue fill, 0.0 to 1.0.
    pub fill: f64,
    /// Active workers.
    pub active: usize,
    /// Active workers parked for lack of work.
    pub idle: usize,
}

/// The autoscaling state machine: feed it samples with their times, it
/// answers with a new worker count when one is due.
///
/// ```
/// use std::time::{Duration, Instant};
/// use corepool::{AutoscalePolicy, Autoscaler, LoadSample};
///
/// let mut scaler = Autoscaler::new(AutoscalePolicy::new(1, 4));
/// let t0 = Instant::now();
/// let busy = LoadSample { fill: 0.95, active: 1, idle: 0 };
/// assert_eq!(scaler.observe(t0, busy), None); // pressure starts
/// assert_eq!(scaler.observe(t0 + Duration::from_millis(500), busy), None);
/// assert_eq!(scaler.observe(t0 + Duration::from_secs(1), busy), Some(2)); // lasted 1 s
/// ```
#[derive(Clone, Debug)]
pub struct Autoscaler {
    policy: AutoscalePolicy,
    pressure_since: Option<Instant>,
    idle_since: Option<Instant>,
}

impl Autoscaler {
    /// A new state machine for `policy`.
    ///
    /// ```
    /// let scaler = corepool::Autoscaler::new(corepool::AutoscalePolicy::new(1, 2));
    /// assert_eq!(scaler.policy().max, 2);
    /// ```
    pub fn new(policy: AutoscalePolicy) -> Self {
        Autoscaler {
            policy,
            pressure_since: None,
            idle_since: None,
        }
    }

    /// The policy it applies.
    ///
    /// ```
    /// let scaler = corepool::Autoscaler::new(corepool::AutoscalePolicy::new(3, 5));
    /// assert_eq!(scaler.policy().min, 3);
    /// ```
    pub fn policy(&self) -> &AutoscalePolicy {
        &self.policy
    }

    /// Takes one sample at time `now`; returns the new number of active
    /// workers when a change is due.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use corepool::{AutoscalePolicy, Autoscaler, LoadSample};
    /// let mut scaler = Autoscaler::new(AutoscalePolicy::new(1, 4));
    /// let t0 = Instant::now();
    /// let idle = LoadSample { fill: 0.0, active: 3, idle: 2 };
    /// assert_eq!(scaler.observe(t0, idle), None);
    /// assert_eq!(scaler.observe(t0 + Duration::from_secs(10), idle), Some(2));
    /// ```
    pub fn observe(&mut self, now: Instant, sample: LoadSample) -> Option<usize> {
        let policy = &self.policy;
        let target = sample.active.clamp(policy.min, policy.max);
        if target != sample.active {
            // Out of bounds (for example after a manual `set_workers`).
            self.pressure_since = None;
            self.idle_since = None;
            return Some(target);
        }
        if sample.fill >= policy.grow_above {
            self.idle_since = None;
            let since = *self.pressure_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= policy.grow_after
                && sample.active < policy.max
            {
                self.pressure_since = None;
                // Saturating: a `step` of `usize::MAX` means "straight to max".
                return Some(sample.active.saturating_add(policy.step).min(policy.max));
            }
            return None;
        }
        self.pressure_since = None;
        if sample.idle > 0 {
            let since = *self.idle_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= policy.shrink_after
                && sample.active > policy.min
            {
                self.idle_since = None;
                return Some(sample.active.saturating_sub(policy.step).max(policy.min));
            }
        } else {
            self.idle_since = None;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(fill: f64, active: usize, idle: usize) -> LoadSample {
        LoadSample { fill, active, idle }
    }

    #[test]
    fn pressure_must_last_the_whole_interval() {
        let mut scaler = Autoscaler::new(AutoscalePolicy::new(1, 4));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(scaler.observe(t0, sample(0.9, 1, 0)), None);
        // A dip resets the timer.
        assert_eq!(scaler.observe(t0 + ms(600), sample(0.5, 1, 0)), None);
        assert_eq!(scaler.observe(t0 + ms(700), sample(0.9, 1, 0)), None);
        assert_eq!(scaler.observe(t0 + ms(1600), sample(0.9, 1, 0)), None);
        assert_eq!(scaler.observe(t0 + ms(1700), sample(0.9, 1, 0)), Some(2));
    }

    #[test]
    fn never_beyond_bounds() {
        let mut scaler = Autoscaler::new(AutoscalePolicy::new(2, 3));
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(scaler.observe(t0, sample(1.0, 3, 0)), None);
        assert_eq!(scaler.observe(t0 + s(5), sample(1.0, 3, 0)), None);
        assert_eq!(scaler.observe(t0, sample(0.0, 2, 2)), None);
        assert_eq!(scaler.observe(t0 + s(60), sample(0.0, 2, 2)), None);
        // Brought back within bounds at once.
        assert_eq!(scaler.observe(t0, sample(0.0, 7, 0)), Some(3));
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert!(AutoscalePolicy::new(0, 4).validate().is_err());
        assert!(AutoscalePolicy::new(5, 4).validate().is_err());
        let mut policy = AutoscalePolicy::new(1, 4);
        policy.grow_above = 1.5;
        assert!(policy.validate().is_err());
        assert!(AutoscalePolicy::new(4, 4).validate().is_ok());
    }
}
