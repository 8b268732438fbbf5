//! Latency histograms (hdrhistogram): recorded in nanoseconds, reported in microseconds.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest latency recorded as itself; longer ones count as this (one hour).
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// A latency distribution, 3 significant digits from 1 ns to an hour.
#[derive(Clone, Debug)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty distribution.
    pub fn new() -> Latency {
        Latency {
            // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig
            // <= 5): this cannot fail, and every test constructs one.
            histogram: Histogram::new_with_bounds(1, HIGHEST_NS, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Records one latency from `from_ns` to `to_ns` (CLOCK_MONOTONIC); a negative span (a
    /// garbage timestamp) counts as 0.
    pub fn record_span(&mut self, from_ns: u64, to_ns: u64) {
        self.histogram
            .saturating_record(to_ns.saturating_sub(from_ns));
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Forgets every value (for rolling windows).
    pub fn reset(&mut self) {
        self.histogram.reset();
    }

    /// The value at `quantile` (0..=1) in microseconds, `None` when empty.
    pub fn quantile_us(&self, quantile: f64) -> Option<f64> {
        (!self.histogram.is_empty()).then(|| us(self.histogram.value_at_quantile(quantile)))
    }

    /// The summary percentiles in microseconds (all `None` when empty).
    pub fn percentiles(&self) -> Percentiles {
        let empty = self.histogram.is_empty();
        let at = |q| self.quantile_us(q);
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: (!empty).then(|| us(self.histogram.max())),
        }
    }
}

/// Percentiles of a distribution in microseconds; `None` (JSON `null`) with no values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p999: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

/// Nanoseconds to microseconds, rounded to 0.1 us (the histogram's precision is 3
/// significant digits anyway).
fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_microseconds() {
        let mut latency = Latency::new();
        assert_eq!(latency.percentiles(), Percentiles::default());
        for us in 1..=1000u64 {
            latency.record_span(1_000_000, 1_000_000 + us * 1000);
        }
        let p = latency.percentiles();
        assert_eq!(latency.count(), 1000);
        let near = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.002, "{got} vs {want}");
        };
        near(p.p50, 500.0);
        near(p.p90, 900.0);
        near(p.p99, 990.0);
        near(p.p999, 999.0);
        near(p.max, 1000.0);
    }

    #[test]
    fn garbage_spans_do_not_panic() {
        let mut latency = Latency::new();
        latency.record_span(10, 5);
        latency.record_span(0, u64::MAX);
        assert_eq!(latency.count(), 2);
        assert_eq!(latency.percentiles().p50, Some(0.0));
    }
}
