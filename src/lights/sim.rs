//! The `sim` lights backend: pin levels kept in memory instead of on GPIO.
//!
//! This file owns [`SimBackend`] and [`SimProbe`]. The backend and every probe
//! share one `Arc<Mutex<..>>`, so tests, `/healthz` and the admin page can read
//! the electrical level of each pin (and count the writes) while the lights
//! task owns the backend on its own thread. A probe can also make a pin fail,
//! to exercise the task's error handling.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{LightBackend, LightError};

/// The backend's name, as `SPA_LIGHTS` spells it.
pub const NAME: &str = "sim";

/// At most this many writes are kept in [`SimProbe::history`].
pub const HISTORY_CAP: usize = 10_000;

#[derive(Debug, Default)]
struct SimState {
    /// Electrical level of every opened pin.
    levels: BTreeMap<u8, bool>,
    /// Successful writes since the backend was opened.
    writes: u64,
    /// Pins whose writes fail (set through a probe).
    failing: BTreeSet<u8>,
    /// The successful writes in order, up to [`HISTORY_CAP`].
    history: Vec<(u8, bool)>,
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Pin levels in memory. Create with [`SimBackend::new`]; read through [`SimProbe`].
#[derive(Debug)]
pub struct SimBackend {
    state: Arc<Mutex<SimState>>,
}

impl SimBackend {
    /// Opens `pins`, each at the electrical level `idle_level`.
    pub fn new(pins: &[u8], idle_level: bool) -> Self {
        let state = SimState {
            levels: pins.iter().map(|&pin| (pin, idle_level)).collect(),
            ..SimState::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// A reader of this backend's levels, usable from any thread.
    pub fn probe(&self) -> SimProbe {
        SimProbe {
            state: Arc::clone(&self.state),
        }
    }
}

impl LightBackend for SimBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn set(&mut self, pin: u8, level: bool) -> Result<(), LightError> {
        let mut state = lock(&self.state);
        if !state.levels.contains_key(&pin) {
            return Err(LightError::Write {
                backend: NAME,
                pin,
                reason: "the pin was not opened by this backend".to_string(),
            });
        }
        if state.failing.contains(&pin) {
            return Err(LightError::Write {
                backend: NAME,
                pin,
                reason: "simulated failure".to_string(),
            });
        }
        state.levels.insert(pin, level);
        state.writes += 1;
        if state.history.len() < HISTORY_CAP {
            state.history.push((pin, level));
        }
        Ok(())
    }

    fn sim_probe(&self) -> Option<SimProbe> {
        Some(self.probe())
    }
}

/// Reads (and, for tests, disturbs) a [`SimBackend`]'s pins. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimProbe {
    state: Arc<Mutex<SimState>>,
}

impl SimProbe {
    /// The electrical level of `pin`, or `None` if the backend did not open it.
    pub fn level(&self, pin: u8) -> Option<bool> {
        lock(&self.state).levels.get(&pin).copied()
    }

    /// The electrical level of every opened pin.
    pub fn levels(&self) -> BTreeMap<u8, bool> {
        lock(&self.state).levels.clone()
    }

    /// How many writes succeeded since the backend was opened.
    pub fn writes(&self) -> u64 {
        lock(&self.state).writes
    }

    /// The successful writes in order (pin, level), at most [`HISTORY_CAP`].
    pub fn history(&self) -> Vec<(u8, bool)> {
        lock(&self.state).history.clone()
    }

    /// Forgets the recorded history (the write count is kept).
    pub fn clear_history(&self) {
        lock(&self.state).history.clear();
    }

    /// Makes every write to `pin` fail (`true`) or work again (`false`).
    pub fn set_failing(&self, pin: u8, failing: bool) {
        let mut state = lock(&self.state);
        if failing {
            state.failing.insert(pin);
        } else {
            state.failing.remove(&pin);
        }
    }
}
