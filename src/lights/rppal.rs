//! The `gpio` lights backend: BCM pins driven through rppal's memory-mapped
//! GPIO registers (`/dev/gpiomem`, or `/dev/gpiomem0` on a Pi 5).
//!
//! This file owns [`RppalBackend`]. It needs a Raspberry Pi OS kernel: Debian's
//! own arm64 kernel has no `/dev/gpiomem`, and there the `gpiochip` backend
//! drives the same BCM line numbers. Every pin is opened as an output at
//! construction; a pin that cannot be had fails with its number and rppal's
//! reason. Pins keep their last (off) level when the backend is dropped
//! instead of falling back to inputs, whose pull-ups could half-light a lamp.

use std::collections::BTreeMap;

use ::rppal::gpio::{Gpio, Level, OutputPin};

use super::{LightBackend, LightError};

/// The backend's name, as `SPA_LIGHTS` spells it.
pub const NAME: &str = "gpio";

/// Output pins opened through rppal.
#[derive(Debug)]
pub struct RppalBackend {
    pins: BTreeMap<u8, OutputPin>,
}

impl RppalBackend {
    /// Opens the GPIO peripheral and every pin in `pins` as an output at the
    /// electrical level `idle_level`.
    pub fn open(pins: &[u8], idle_level: bool) -> Result<Self, LightError> {
        let gpio = Gpio::new().map_err(|e| LightError::Open {
            backend: NAME,
            reason: format!("rppal cannot open the GPIO peripheral through /dev/gpiomem: {e}"),
        })?;
        let mut opened = BTreeMap::new();
        for &pin in pins {
            let raw = gpio.get(pin).map_err(|e| LightError::OpenPin {
                backend: NAME,
                pin,
                reason: e.to_string(),
            })?;
            let mut output = if idle_level {
                raw.into_output_high()
            } else {
                raw.into_output_low()
            };
            output.set_reset_on_drop(false);
            opened.insert(pin, output);
        }
        Ok(Self { pins: opened })
    }
}

impl LightBackend for RppalBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn set(&mut self, pin: u8, level: bool) -> Result<(), LightError> {
        let output = self.pins.get_mut(&pin).ok_or_else(|| LightError::Write {
            backend: NAME,
            pin,
            reason: "the pin was not opened by this backend".to_string(),
        })?;
        output.write(if level { Level::High } else { Level::Low });
        Ok(())
    }
}
