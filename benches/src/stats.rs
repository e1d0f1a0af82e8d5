//! Latency summaries: percentiles over recorded samples.

use std::time::Duration;

/// The distribution of a set of latency samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// How many samples there were.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
    /// The arithmetic mean.
    pub mean: Duration,
}

impl Summary {
    /// Summarises `samples`, sorting them in place. An empty set gives zeros.
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let count = samples.len();
        Self {
            count,
            p50: percentile(samples, 50),
            p99: percentile(samples, 99),
            max: samples[count - 1],
            mean: total / u32::try_from(count).unwrap_or(u32::MAX),
        }
    }
}

/// Returns the nearest-rank `pct`th percentile of sorted, non-empty `samples`: the smallest
/// sample that at least `pct` percent of the samples do not exceed.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Returns `duration` in milliseconds with fractions, for reports.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values
            .iter()
            .map(|&value| Duration::from_millis(value))
            .collect()
    }

    #[test]
    fn empty_samples_give_zeros() {
        assert_eq!(Summary::of(&mut []), Summary::default());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples = ms(&(1..=100).rev().collect::<Vec<_>>());
        let summary = Summary::of(&mut samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p99, Duration::from_millis(99));
        assert_eq!(summary.max, Duration::from_millis(100));
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let summary = Summary::of(&mut ms(&[7]));
        assert_eq!(summary.p50, Duration::from_millis(7));
        assert_eq!(summary.p99, Duration::from_millis(7));
        assert_eq!(summary.mean, Duration::from_millis(7));
    }

    #[test]
    fn mean_of_uneven_samples() {
        let summary = Summary::of(&mut ms(&[1, 2, 3, 10]));
        assert_eq!(summary.mean, Duration::from_millis(4));
        assert_eq!(summary.p50, Duration::from_millis(2));
    }
}
