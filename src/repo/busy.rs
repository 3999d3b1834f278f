//! Wall time during which at least one of several overlapping operations was under way.
//!
//! A restore fetches and decrypts several blobs at once while the data already fetched is
//! being loaded; summing each fetch's duration would count the overlap many times, and the
//! restore's own wall time includes the load. This clock counts only the time in which one
//! or more fetches were in flight, which is what a drill reports as its fetch phase.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Accumulated busy wall time of overlapping operations.
#[derive(Debug, Default)]
pub struct BusyClock {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    active: usize,
    since: Option<Instant>,
    total: Duration,
}

/// Marks one operation as under way until it is dropped.
#[must_use = "the operation ends when the guard is dropped"]
pub struct Busy<'a>(&'a BusyClock);

impl BusyClock {
    /// Starts one operation.
    pub fn start(&self) -> Busy<'_> {
        let mut s = self.state.lock().expect("busy clock poisoned");
        if s.active == 0 {
            s.since = Some(Instant::now());
        }
        s.active += 1;
        Busy(self)
    }

    /// Busy time so far, including the running stretch.
    pub fn total(&self) -> Duration {
        let s = self.state.lock().expect("busy clock poisoned");
        s.total
            + s.since
                .filter(|_| s.active > 0)
                .map_or(Duration::ZERO, |t| t.elapsed())
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("busy clock poisoned");
        s.active -= 1;
        if s.active == 0 {
            if let Some(t) = s.since.take() {
                s.total += t.elapsed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_operations_count_once_and_gaps_not_at_all() {
        let c = BusyClock::default();
        let a = c.start();
        std::thread::sleep(Duration::from_millis(40));
        let b = c.start();
        std::thread::sleep(Duration::from_millis(40));
        drop(a);
        std::thread::sleep(Duration::from_millis(40));
        drop(b);
        let busy = c.total();
        // Idle: not counted.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(c.total(), busy);
        let _c = c.start();
        std::thread::sleep(Duration::from_millis(40));
        let t = c.total();
        // 120 ms with one or two under way, then 40 ms; the 100 ms gap is not counted, nor
        // the 40 ms of overlap twice.
        assert!(t >= Duration::from_millis(160), "{t:?}");
        assert!(t < Duration::from_millis(250), "{t:?}");
    }
}
