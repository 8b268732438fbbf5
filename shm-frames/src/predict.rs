//! The `Predict` wait strategy: learn the stream's rhythm from its publish timestamps,
//! sleep until just before the next frame is due, spin only across the window in which it
//! can arrive, then block.
//!
//! A [`Predictor`] only plans: for each wait it names the moment to stop sleeping and the
//! moment to stop spinning ([`Plan`]). The reader's wait loop carries the plan out with the
//! same three moves every strategy uses (the seat semaphore with a deadline, the spin on
//! `latest`, the semaphore again) and the same protocol steps (`look`, `after_wake`), so a
//! frame is never missed or taken twice whatever the plan says. The sleep is a timed wait
//! on the seat semaphore, not a bare `clock_nanosleep`: the deadline is the same absolute
//! CLOCK_MONOTONIC hrtimer (timer slack set to 1 ns), and a frame that comes early still
//! wakes the sleeper at `Block`'s cost instead of waiting out the margin.
//!
//! What it learns, per region (a new epoch starts afresh):
//! - the period: the median of the last [`RHYTHM`] frame intervals (publish to publish, per
//!   seq); the nominal rate in the header only lets it trust fewer intervals when they agree
//!   with it;
//! - the jitter: how far intervals fall from the period, early and late (a high percentile
//!   of recent ones);
//! - the timer overshoot: how late its own timed sleeps wake (a high percentile).
//!
//! A stream has a rhythm while its last [`RHYTHM`] intervals all lie within [`TOLERANCE`]
//! of their median. Without one (`--fps 0`, a pause, a rate change being learned, a stopped
//! producer) the plan is `Block`'s. A frame that has not come by the end of its window is
//! waited for on the semaphore. Spinning is paid from a token bucket that fills at the
//! budget's share of wall time, so over any long run it never spins more than that share of
//! a core; a window that would cost more is cut, starting from its late end.

use std::time::Duration;

/// Intervals that must agree before the stream counts as rhythmic (half as many suffice
/// when they agree with the nominal rate).
pub(crate) const RHYTHM: usize = 8;

/// How far (a fraction of the period) an interval may stray and still count as rhythmic.
const TOLERANCE: f64 = 0.25;

/// Samples kept of intervals and of timer overshoot.
const SAMPLES: usize = 64;

/// The percentile of jitter and overshoot the margin covers.
const QUANTILE: f64 = 0.98;

/// Overshoot assumed before enough sleeps were measured.
const OVERSHOOT_GUESS_NS: u64 = 150_000;

/// Added to both ends of every window (the spin's own clock reads, the take).
const GUARD_NS: u64 = 20_000;

/// At most this much wall time of budget is saved up for later spins.
const BUCKET_WINDOW_NS: u64 = 1_000_000_000;

/// Longest period it predicts (below 1 fps a frame is rare enough to block for).
const MAX_PERIOD_NS: u64 = 1_000_000_000;

/// The share of one core the `Predict` strategy may spend spinning, in basis points
/// (1/100 of a percent): 0 ..= 10 000. Zero makes it behave exactly as `Block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpinBudget(u16);

impl SpinBudget {
    /// The default: 5% of a core.
    pub const DEFAULT: SpinBudget = SpinBudget(500);
    /// No spinning at all: `Block`.
    pub const ZERO: SpinBudget = SpinBudget(0);

    /// A budget of `percent` of a core (0 ..= 100, fractions allowed); `None` outside.
    pub fn from_percent(percent: f64) -> Option<SpinBudget> {
        (percent.is_finite() && (0.0..=100.0).contains(&percent))
            .then(|| SpinBudget((percent * 100.0).round() as u16))
    }

    /// The budget in percent of a core.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    fn share(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }
}

impl Default for SpinBudget {
    fn default() -> Self {
        SpinBudget::DEFAULT
    }
}

impl std::fmt::Display for SpinBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

/// One wait's plan, in CLOCK_MONOTONIC ns: sleep on the semaphore until `spin_from`, spin
/// until `spin_until`, then sleep on the semaphore again. `spin_from == spin_until` is
/// `Block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub spin_from: u64,
    pub spin_until: u64,
}

impl Plan {
    /// `Block`'s plan: no spinning.
    pub(crate) fn block(now: u64) -> Plan {
        Plan {
            spin_from: now,
            spin_until: now,
        }
    }

    /// Whether the plan sleeps before it spins (a timed sleep whose overshoot is measured).
    pub(crate) fn sleeps_first(&self, now: u64) -> bool {
        self.spin_from > now && self.spin_until > self.spin_from
    }
}

/// The last `N` samples of something, newest overwriting oldest.
#[derive(Clone, Debug)]
struct Ring<const N: usize> {
    values: [u64; N],
    len: usize,
    next: usize,
}

impl<const N: usize> Ring<N> {
    fn new() -> Ring<N> {
        Ring {
            values: [0; N],
            len: 0,
            next: 0,
        }
    }

    fn push(&mut self, value: u64) {
        self.values[self.next] = value;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }

    fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    /// The newest `k` samples (fewer if there are not as many).
    fn newest(&self, k: usize) -> impl Iterator<Item = u64> + '_ {
        let k = k.min(self.len);
        (1..=k).map(move |i| self.values[(self.next + N - i) % N])
    }

    fn all(&self) -> impl Iterator<Item = u64> + '_ {
        self.newest(self.len)
    }
}

/// The value at quantile `q` (0..=1) of `values` (at most [`SAMPLES`] of them are used),
/// `None` when empty. Sorted in a stack buffer: this runs on every wait, so it allocates
/// nothing.
fn quantile(values: impl Iterator<Item = u64>, q: f64) -> Option<u64> {
    let mut buffer = [0u64; SAMPLES];
    let mut len = 0;
    for value in values.take(SAMPLES) {
        buffer[len] = value;
        len += 1;
    }
    let values = &mut buffer[..len];
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let at = ((values.len() - 1) as f64 * q).ceil() as usize;
    values.get(at.min(values.len() - 1)).copied()
}

/// What the `Predict` strategy has learned about one stream, and its spin budget.
#[derive(Clone, Debug)]
pub(crate) struct Predictor {
    budget: SpinBudget,
    epoch: u64,
    /// The last frame taken: seq and publish ns.
    last: Option<(u64, u64)>,
    /// Publish-to-publish intervals per seq, ns.
    intervals: Ring<SAMPLES>,
    /// How late timed sleeps woke, ns.
    overshoot: Ring<SAMPLES>,
    /// Spin time still allowed, ns, and when it was last topped up.
    tokens_ns: f64,
    tokens_at: Option<u64>,
}

impl Predictor {
    pub(crate) fn new(budget: SpinBudget) -> Predictor {
        Predictor {
            budget,
            epoch: 0,
            last: None,
            intervals: Ring::new(),
            overshoot: Ring::new(),
            tokens_ns: 0.0,
            tokens_at: None,
        }
    }

    /// Learns from a frame taken: its seq and publish time, in the region of `epoch`.
    pub(crate) fn observe(&mut self, epoch: u64, seq: u64, publish_ns: u64) {
        if epoch != self.epoch {
            // A new region: a restarted producer, perhaps at another rate.
            self.epoch = epoch;
            self.last = None;
            self.intervals.clear();
        }
        if let Some((last_seq, last_ns)) = self.last {
            let gap = seq.saturating_sub(last_seq);
            // Only close frames say much about the period (a long skip may hide a pause).
            if (1..=4).contains(&gap) && publish_ns > last_ns {
                self.intervals.push((publish_ns - last_ns) / gap);
            }
        }
        self.last = Some((seq, publish_ns));
    }

    /// Learns how late a timed sleep that was to end at `target_ns` woke (`woke_ns`).
    pub(crate) fn slept(&mut self, target_ns: u64, woke_ns: u64) {
        if woke_ns >= target_ns {
            self.overshoot.push(woke_ns - target_ns);
        }
    }

    /// Pays for `ns` of spinning.
    pub(crate) fn spun(&mut self, ns: u64) {
        self.tokens_ns -= ns as f64;
    }

    /// The stream's period, if it has a rhythm now: the median of the newest intervals,
    /// which all lie within the tolerance of it. `nominal_ns` (0: none) is the header's
    /// rate as a period: intervals that agree with it are trusted sooner.
    pub(crate) fn period(&self, nominal_ns: u64) -> Option<u64> {
        let agrees = |period: u64, reference: u64| {
            (period as f64 - reference as f64).abs() <= reference as f64 * TOLERANCE
        };
        let median = |k: usize| quantile(self.intervals.newest(k), 0.5);
        let rhythmic = |k: usize| {
            let period = median(k)?;
            let all = self.intervals.newest(k).all(|i| agrees(i, period));
            (self.intervals.len >= k && all).then_some(period)
        };
        let period = rhythmic(RHYTHM).or_else(|| {
            let early = rhythmic(RHYTHM / 2)?;
            (nominal_ns > 0 && agrees(early, nominal_ns)).then_some(early)
        })?;
        (period > 0 && period <= MAX_PERIOD_NS).then_some(period)
    }

    /// How early and how late (ns) frames fall against the period, at the margin's
    /// percentile, from the recent intervals that fit the rhythm.
    fn jitter(&self, period: u64) -> (u64, u64) {
        let fits = move |i: &u64| (*i as f64 - period as f64).abs() <= period as f64 * TOLERANCE;
        let fitting = || self.intervals.all().filter(fits);
        (
            quantile(fitting().map(|i| period.saturating_sub(i)), QUANTILE).unwrap_or(0),
            quantile(fitting().map(|i| i.saturating_sub(period)), QUANTILE).unwrap_or(0),
        )
    }

    /// How late timed sleeps wake, at the margin's percentile (a guess until measured).
    fn overshoot(&self) -> u64 {
        let measured = quantile(self.overshoot.all(), QUANTILE);
        match measured {
            Some(ns) if self.overshoot.len >= RHYTHM => ns,
            Some(ns) => ns.max(OVERSHOOT_GUESS_NS),
            None => OVERSHOOT_GUESS_NS,
        }
    }

    /// Tops the budget's bucket up for the wall time since the last plan.
    fn refill(&mut self, now: u64) {
        let share = self.budget.share();
        let cap = BUCKET_WINDOW_NS as f64 * share;
        let earned = match self.tokens_at {
            Some(at) => now.saturating_sub(at) as f64 * share,
            None => 0.0,
        };
        self.tokens_ns = (self.tokens_ns + earned).min(cap);
        self.tokens_at = Some(now);
    }

    /// The plan for a wait that starts at `now` with no frame there yet. `nominal_ns` is the
    /// header's nominal period (0: none).
    pub(crate) fn plan(&mut self, now: u64, nominal_ns: u64) -> Plan {
        self.refill(now);
        if self.budget == SpinBudget::ZERO {
            return Plan::block(now);
        }
        let (Some(period), Some((_, last_ns))) = (self.period(nominal_ns), self.last) else {
            return Plan::block(now);
        };
        let (jitter_early, jitter_late) = self.jitter(period);
        let mut early = self.overshoot() + jitter_early + GUARD_NS;
        let mut late = jitter_late + GUARD_NS;
        // What one frame may spend: its share of the budget, and no more than is saved up.
        let allowed = (period as f64 * self.budget.share()).min(self.tokens_ns.max(0.0)) as u64;
        if early + late > allowed {
            // Keep the early side (it is where the frame is caught spinning); a frame later
            // than the cut window is waited for on the semaphore, at Block's cost.
            early = early.min(allowed);
            late = allowed - early;
        }
        let expected = last_ns.saturating_add(period);
        let spin_until = expected.saturating_add(late);
        if spin_until <= now || early + late == 0 {
            // The frame is late past its window (a pause, a stop, a slower rate): Block.
            return Plan::block(now);
        }
        Plan {
            spin_from: expected.saturating_sub(early).max(now),
            spin_until,
        }
    }
}

/// Sets this thread's timer slack to 1 ns (once per thread), so timed sleeps wake when
/// asked rather than up to the default 50 µs later. Failure only costs precision.
pub(crate) fn tighten_timer_slack() {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    DONE.with(|done| {
        if !done.replace(true) {
            if let Err(error) = nix::sys::prctl::set_timerslack(1) {
                tracing::debug!(%error, "PR_SET_TIMERSLACK failed; timed sleeps may wake late");
            }
        }
    });
}

/// The nominal period (ns) of a rate in millihertz, 0 for none.
pub(crate) fn nominal_period_ns(fps_milli: u64) -> u64 {
    if fps_milli == 0 {
        return 0;
    }
    let ns = Duration::from_secs(1).as_nanos() as u64 * 1000 / fps_milli;
    ns.min(u64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P60: u64 = 16_666_667;

    fn steady(p: &mut Predictor, epoch: u64, from_seq: u64, frames: u64, period: u64) -> u64 {
        let mut t = 1_000_000_000 + from_seq * period;
        for seq in from_seq..from_seq + frames {
            p.observe(epoch, seq, t);
            t += period;
        }
        t - period
    }

    #[test]
    fn budgets_parse_in_percent() {
        assert_eq!(SpinBudget::from_percent(5.0), Some(SpinBudget::DEFAULT));
        assert_eq!(SpinBudget::from_percent(0.0), Some(SpinBudget::ZERO));
        assert_eq!(SpinBudget::from_percent(100.0).unwrap().percent(), 100.0);
        assert_eq!(SpinBudget::from_percent(2.5).unwrap().to_string(), "2.5%");
        for bad in [101.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(SpinBudget::from_percent(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_rhythm_until_enough_intervals_agree() {
        let mut p = Predictor::new(SpinBudget::DEFAULT);
        assert_eq!(p.period(0), None);
        steady(&mut p, 1, 1, RHYTHM as u64, P60);
        assert_eq!(p.period(0), None, "{} intervals are too few", RHYTHM - 1);
        steady(&mut p, 1, 1, RHYTHM as u64 + 1, P60);
        assert_eq!(p.period(0), Some(P60));
    }

    #[test]
    fn a_nominal_rate_that_agrees_is_trusted_sooner() {
        let mut p = Predictor::new(SpinBudget::DEFAULT);
        steady(&mut p, 1, 1, RHYTHM as u64 / 2 + 1, P60);
        assert_eq!(p.period(0), None);
        assert_eq!(p.period(nominal_period_ns(60_000)), Some(P60));
        assert_eq!(p.period(nominal_period_ns(30_000)), None, "it disagrees");
    }

    #[test]
    fn a_pause_breaks_the_rhythm_until_it_shows_again() {
        let mut p = Predictor::new(SpinBudget::DEFAULT);
        let t = steady(&mut p, 1, 1, 20, P60);
        // Paused for 2 s: the next seq comes late.
        p.observe(1, 21, t + 2_000_000_000);
        assert_eq!(p.period(0), None);
        let base = t + 2_000_000_000;
        for i in 1..RHYTHM as u64 {
            p.observe(1, 21 + i, base + i * P60);
            assert_eq!(p.period(0), None, "after {i} intervals");
        }
        p.observe(1, 21 + RHYTHM as u64, base + RHYTHM as u64 * P60);
        assert_eq!(p.period(0), Some(P60));
    }

    #[test]
    fn a_rate_change_is_learned_and_a_new_epoch_starts_afresh() {
        let mut p = Predictor::new(SpinBudget::DEFAULT);
        let t = steady(&mut p, 1, 1, 20, P60);
        let p20 = 50_000_000;
        for i in 1..=RHYTHM as u64 {
            p.observe(1, 20 + i, t + i * p20);
        }
        assert_eq!(p.period(0), Some(p20));
        // A new region restarts the seqs: nothing learned carries over.
        p.observe(2, 1, 5_000_000_000);
        assert_eq!(p.period(0), None);
        assert!(p.intervals.len == 0);
    }

    #[test]
    fn irregular_streams_plan_block() {
        let mut p = Predictor::new(SpinBudget::DEFAULT);
        let mut t = 1_000_000_000u64;
        let mut rng = 7u64;
        for seq in 1..200 {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            t += 100_000 + (rng >> 33) % 5_000_000;
            p.observe(1, seq, t);
        }
        assert_eq!(p.period(0), None);
        assert_eq!(p.plan(t + 1000, 0), Plan::block(t + 1000));
    }

    #[test]
    fn a_rhythmic_stream_sleeps_then_spins_around_the_due_time() {
        let mut p = Predictor::new(SpinBudget::DEFAULT);
        let last = steady(&mut p, 1, 1, 30, P60);
        // A second of history tops the bucket up.
        p.plan(last - 1_000_000_000, 0);
        let now = last + 200_000;
        let plan = p.plan(now, 0);
        let due = last + P60;
        assert!(plan.sleeps_first(now), "{plan:?}");
        assert!(plan.spin_from < due && due < plan.spin_until, "{plan:?}");
        let window = plan.spin_until - plan.spin_from;
        assert!(window as f64 <= P60 as f64 * 0.05, "window {window} ns");
    }

    #[test]
    fn spinning_never_exceeds_the_budget_and_zero_is_block() {
        let mut p = Predictor::new(SpinBudget::from_percent(1.0).unwrap());
        let last = steady(&mut p, 1, 1, 30, P60);
        p.plan(last - 1_000_000_000, 0);
        // Overshoot so large that keeping the latency would need more than 1% of a core.
        for _ in 0..SAMPLES {
            p.slept(0, 5_000_000);
        }
        let now = last + 100_000;
        let plan = p.plan(now, 0);
        assert!(
            plan.spin_until - plan.spin_from <= P60 / 100 + 1,
            "{plan:?}"
        );
        // Spend the whole bucket: the next plan has nothing to spin with.
        p.spun(2_000_000_000);
        assert_eq!(p.plan(now, 0), Plan::block(now));

        let mut zero = Predictor::new(SpinBudget::ZERO);
        let last = steady(&mut zero, 1, 1, 30, P60);
        zero.plan(last - 1_000_000_000, 0);
        assert_eq!(zero.plan(last + 1, 0), Plan::block(last + 1));
    }

    #[test]
    fn a_frame_late_past_its_window_is_waited_for_by_blocking() {
        let mut p = Predictor::new(SpinBudget::DEFAULT);
        let last = steady(&mut p, 1, 1, 30, P60);
        p.plan(last - 1_000_000_000, 0);
        let now = last + 2 * P60;
        assert_eq!(p.plan(now, 0), Plan::block(now));
    }

    #[test]
    fn margins_follow_the_measured_overshoot() {
        let mut p = Predictor::new(SpinBudget::from_percent(50.0).unwrap());
        let last = steady(&mut p, 1, 1, 30, P60);
        p.plan(last - 1_000_000_000, 0);
        for _ in 0..SAMPLES {
            p.slept(1_000, 1_000 + 10_000);
        }
        let small = p.plan(last + 1, 0);
        for _ in 0..SAMPLES {
            p.slept(1_000, 1_000 + 400_000);
        }
        let large = p.plan(last + 1, 0);
        assert!(large.spin_from < small.spin_from, "{small:?} {large:?}");
        assert_eq!(large.spin_until, small.spin_until);
    }
}
