//! A progress line on stderr: redrawn in place on a terminal, printed every few seconds
//! otherwise, so that logs of a CI run stay short.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// How often the line is redrawn on a terminal.
const TERMINAL_INTERVAL: Duration = Duration::from_millis(200);
/// How often a line is printed when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Counts finished operations of one phase and shows them against the total.
pub(crate) struct Progress {
    done: Arc<AtomicU64>,
    ticker: JoinHandle<()>,
    label: &'static str,
    total: u64,
    started: Instant,
}

impl Progress {
    /// Starts showing progress of `label` towards `total` operations.
    pub(crate) fn start(label: &'static str, total: u64) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let terminal = std::io::stderr().is_terminal();
        let interval = if terminal {
            TERMINAL_INTERVAL
        } else {
            LOG_INTERVAL
        };
        let counter = done.clone();
        let ticker = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let line = render(
                    label,
                    counter.load(Ordering::Relaxed),
                    total,
                    started.elapsed(),
                );
                if terminal {
                    eprint!("\r{line}\x1b[K");
                } else {
                    eprintln!("{line}");
                }
                let _ = std::io::stderr().flush();
            }
        });
        Self {
            done,
            ticker,
            label,
            total,
            started,
        }
    }

    /// Returns a counter to add finished operations to.
    pub(crate) fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    /// Stops the line and prints the final count.
    pub(crate) fn finish(self) {
        self.ticker.abort();
        let line = render(
            self.label,
            self.done.load(Ordering::Relaxed),
            self.total,
            self.started.elapsed(),
        );
        if std::io::stderr().is_terminal() {
            eprintln!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
}

fn render(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|cell| if cell < filled { '#' } else { '.' })
        .collect();
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "load: {label:<9} [{bar}] {done}/{total} {rate:.0}/s {:.1}s",
        elapsed.as_secs_f64()
    )
}
