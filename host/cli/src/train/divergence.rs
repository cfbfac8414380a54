//! Stopping a run whose loss explodes without ever becoming NaN (`--lr 1e6` reached losses of
//! 3e13 and "succeeded").
//!
//! The rule: a training step's loss above [`FACTOR`] times the run's first loss (at least
//! [`FACTOR`] × [`FLOOR`]) for [`STEPS`] steps in a row is divergence. Healthy runs stay far
//! below it (a cross-entropy starts near `ln(classes)` and falls); a run that diverged
//! stays above it. The run then stops as it does on a NaN loss: the message names the step,
//! the exit status is 1, and the last good checkpoint is kept. The first loss is this
//! process's first step, also after `--resume`.

/// How many times the first loss a step's loss must exceed.
pub const FACTOR: f32 = 1000.0;
/// The smallest first loss the rule measures from, so a run that starts near zero loss is not
/// stopped by ordinary noise.
pub const FLOOR: f32 = 1.0;
/// How many consecutive steps above the limit make divergence.
pub const STEPS: u32 = 5;

/// Watches the losses of one run.
#[derive(Debug, Default)]
pub(crate) struct Divergence {
    first: Option<f32>,
    above: u32,
}

/// A run that diverged: the loss that made it, and the limit it stayed above.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diverged {
    /// The last step's loss.
    pub loss: f32,
    /// The run's first loss.
    pub first: f32,
    /// The limit: [`FACTOR`] × max(first, [`FLOOR`]).
    pub limit: f32,
}

impl Divergence {
    /// Records one finite training loss; `Some` once the run has diverged.
    pub(crate) fn observe(&mut self, loss: f32) -> Option<Diverged> {
        let first = *self.first.get_or_insert(loss);
        let limit = FACTOR * first.max(FLOOR);
        if loss > limit {
            self.above += 1;
        } else {
            self.above = 0;
        }
        (self.above >= STEPS).then_some(Diverged { loss, first, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_that_stays_far_above_the_first_stops_the_run() {
        let mut d = Divergence::default();
        assert_eq!(d.observe(2.3), None);
        for _ in 0..STEPS - 1 {
            assert_eq!(d.observe(3e13), None);
        }
        let stop = d.observe(3e13).unwrap();
        assert_eq!((stop.first, stop.limit), (2.3, 2300.0));
    }

    #[test]
    fn spikes_and_healthy_runs_do_not() {
        let mut d = Divergence::default();
        d.observe(2.3);
        for _ in 0..10 {
            // A spike that comes back below the limit resets the count.
            for _ in 0..STEPS - 1 {
                assert_eq!(d.observe(1e6), None);
            }
            assert_eq!(d.observe(0.5), None);
        }
        // A first loss near zero is measured from FLOOR: 50 is no divergence.
        let mut d = Divergence::default();
        d.observe(1e-4);
        for _ in 0..20 {
            assert_eq!(d.observe(50.0), None);
        }
    }
}
