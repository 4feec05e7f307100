//! The `gpiochip` lights backend: BCM line numbers driven through the Linux GPIO
//! character device (`/dev/gpiochipN`) with gpiocdev.
//!
//! This file owns [`GpiochipBackend`] and the search for the Raspberry Pi's GPIO
//! chip (by its label: `pinctrl-bcm2835`, `pinctrl-bcm2711`, `pinctrl-rp1`, ...),
//! or the chip named by `SPA_GPIOCHIP=/dev/gpiochipN` (for example the PL061 of
//! `qemu-system-aarch64 -M virt`). It works on any kernel, Debian's own arm64
//! kernel included. Each pin is its own line request, so a pin that cannot be
//! had fails with its number and the kernel's reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gpiocdev::line::Value;
use gpiocdev::Request;

use super::{is_pi_gpio_label, LightBackend, LightError, CONSUMER};

/// The backend's name, as `SPA_LIGHTS` spells it.
pub const NAME: &str = "gpiochip";

/// Environment variable naming the GPIO chip explicitly.
pub const ENV_CHIP: &str = "SPA_GPIOCHIP";

/// Output lines requested from one GPIO chip.
#[derive(Debug)]
pub struct GpiochipBackend {
    chip: PathBuf,
    label: String,
    lines: BTreeMap<u8, Request>,
}

fn value(level: bool) -> Value {
    if level {
        Value::Active
    } else {
        Value::Inactive
    }
}

impl GpiochipBackend {
    /// Requests every pin in `pins` (as a line offset of `chip`) as an output at
    /// the electrical level `idle_level`.
    pub fn open(chip: &Path, pins: &[u8], idle_level: bool) -> Result<Self, LightError> {
        let handle = gpiocdev::Chip::from_path(chip).map_err(|e| LightError::Open {
            backend: NAME,
            reason: format!("{} is not a usable GPIO chip: {e}", chip.display()),
        })?;
        let info = handle.info().map_err(|e| LightError::Open {
            backend: NAME,
            reason: format!("cannot read the chip info of {}: {e}", chip.display()),
        })?;
        let resolved = handle.path().to_path_buf();
        drop(handle);
        let mut lines = BTreeMap::new();
        for &pin in pins {
            if u32::from(pin) >= info.num_lines {
                return Err(LightError::OpenPin {
                    backend: NAME,
                    pin,
                    reason: format!(
                        "{} ({}) has only {} lines",
                        resolved.display(),
                        info.label,
                        info.num_lines
                    ),
                });
            }
            let request = Request::builder()
                .on_chip(resolved.as_path())
                .with_consumer(CONSUMER)
                .with_line(u32::from(pin))
                .as_output(value(idle_level))
                .request()
                .map_err(|e| LightError::OpenPin {
                    backend: NAME,
                    pin,
                    reason: format!("requesting line {pin} of {}: {e}", resolved.display()),
                })?;
            lines.insert(pin, request);
        }
        Ok(Self {
            chip: resolved,
            label: info.label,
            lines,
        })
    }

    /// The chip's device path.
    pub fn chip(&self) -> &Path {
        &self.chip
    }

    /// The chip's label (its driver, e.g. `pinctrl-bcm2711`).
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl LightBackend for GpiochipBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn set(&mut self, pin: u8, level: bool) -> Result<(), LightError> {
        let request = self.lines.get(&pin).ok_or_else(|| LightError::Write {
            backend: NAME,
            pin,
            reason: "the pin was not opened by this backend".to_string(),
        })?;
        request
            .set_lone_value(value(level))
            .map_err(|e| LightError::Write {
                backend: NAME,
                pin,
                reason: e.to_string(),
            })
    }
}

/// The chip named by `SPA_GPIOCHIP`, if set and not empty.
pub fn env_chip() -> Option<PathBuf> {
    std::env::var_os(ENV_CHIP)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A GPIO character device and its label, or why the label could not be read.
pub type ChipLabel = (PathBuf, Result<String, String>);

/// Every GPIO character device with its label.
pub fn list_chips() -> Result<Vec<ChipLabel>, String> {
    let paths = gpiocdev::chip::chips().map_err(|e| format!("cannot list /dev: {e}"))?;
    Ok(paths
        .into_iter()
        .map(|path| {
            let label = gpiocdev::Chip::from_path(&path)
                .and_then(|chip| chip.info())
                .map(|info| info.label)
                .map_err(|e| e.to_string());
            (path, label)
        })
        .collect())
}

/// The first GPIO chip whose label is a Raspberry Pi's GPIO controller, with
/// its label; otherwise a sentence part saying what was found instead.
pub fn find_pi_chip() -> Result<(PathBuf, String), String> {
    let chips = list_chips()?;
    if chips.is_empty() {
        return Err("there is no /dev/gpiochip* device".to_string());
    }
    let mut seen = Vec::new();
    for (path, label) in chips {
        match label {
            Ok(label) if is_pi_gpio_label(&label) => return Ok((path, label)),
            Ok(label) => seen.push(format!("{} is {label}", path.display())),
            Err(e) => seen.push(format!("{}: {e}", path.display())),
        }
    }
    Err(format!(
        "no /dev/gpiochip* is a Raspberry Pi GPIO controller ({})",
        seen.join("; ")
    ))
}
