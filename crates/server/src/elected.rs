//! Running a duty on one process of the installation at a time (see `storage::leadership`):
//! each process runs [`spawn`] for each duty; the one that leads runs the task, the others wait
//! to take over. A leader that loses its lock stops the task first and then competes again.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::{Duty, Storage};

/// Which duties this process leads now (shown by `/healthz` and the `learnpulse_duty_leader`
/// gauge).
#[derive(Default)]
pub struct Leading([AtomicBool; Duty::ALL.len()]);

impl Leading {
    fn flag(&self, duty: Duty) -> &AtomicBool {
        let i = Duty::ALL
            .iter()
            .position(|d| *d == duty)
            .expect("every duty is listed");
        &self.0[i]
    }

    pub fn leads(&self, duty: Duty) -> bool {
        self.flag(duty).load(Ordering::SeqCst)
    }

    /// The names of the duties this process leads.
    pub fn names(&self) -> Vec<&'static str> {
        Duty::ALL
            .into_iter()
            .filter(|d| self.leads(*d))
            .map(Duty::name)
            .collect()
    }

    fn set(&self, duty: Duty, on: bool) {
        self.flag(duty).store(on, Ordering::SeqCst);
        metrics::gauge!("learnpulse_duty_leader", "duty" => duty.name()).set(if on {
            1.0
        } else {
            0.0
        });
    }
}

/// Starts competing for `duty`; while this process leads it, `task(stop)` runs (it must return
/// soon after `stop` turns true), and `leading` says so (through shutdown: a process that led
/// a duty until it stopped does its last act, such as the final snapshot).
pub fn spawn<F, Fut>(
    storage: Arc<Storage>,
    leading: Arc<Leading>,
    duty: Duty,
    mut shutdown: watch::Receiver<bool>,
    task: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let held = |on: bool| leading.set(duty, on);
        held(false);
        loop {
            let taken = tokio::select! {
                taken = storage.lead(duty) => taken,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let mut leadership = match taken {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(duty = duty.name(), error = %e, "cannot compete for a duty; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if storage.is_shared() {
                tracing::info!(duty = duty.name(), "this process now leads a duty");
            }
            held(true);
            let (stop, stopped) = watch::channel(false);
            let run = tokio::spawn(task(stopped));
            let lost = tokio::select! {
                _ = leadership.lost() => true,
                _ = shutdown.wait_for(|stop| *stop) => false,
            };
            let _ = stop.send(true);
            let _ = run.await;
            if !lost {
                // Stopping, not deposed: this process still counts as the duty's leader, so
                // that the graceful stop does the duty's last act (the final snapshot).
                return;
            }
            held(false);
            drop(leadership);
            tracing::warn!(
                duty = duty.name(),
                "lost the lead of a duty; competing again"
            );
        }
    });
}
