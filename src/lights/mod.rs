//! Room-status lights: the red/amber/green light over each treatment room's door.
//!
//! This module owns
//! - the wiring: [`parse_channels`] reads `SPA_LIGHT_CHANNELS` (`1=17,27,22 2=5,6,13`,
//!   channel = red,amber,green BCM pins) and rejects bad wiring with one sentence;
//! - the backend choice: [`BackendKind`] (`SPA_LIGHTS`) and [`open_backend`], behind the
//!   small [`LightBackend`] trait (`gpio` = rppal in [`rppal`], `gpiochip` = the Linux GPIO
//!   character device in [`gpiochip`], `sim` = levels in memory in [`sim`], `off`);
//! - the patterns: [`levels`] and [`blinks`], pure functions of a channel's
//!   [`LightStatus`], the storage health and the blink phase ([`BlinkTiming::phases`]);
//! - the lights task: [`spawn`] runs the backend on its own OS thread, so a stuck GPIO
//!   write never blocks the tokio runtime or the command writer; the [`Lights`] handle's
//!   methods never block. The thread sleeps in a blocking receive while no light blinks
//!   (no periodic wake-ups on an idle box) and writes a pin only when its level changes;
//! - the installer's walk test ([`walk_test`]) behind `spa-hub lights test`.
//!
//! The caller maps room state to [`LightStatus`] and rooms to channels; this module
//! knows nothing about rooms or storage beyond that.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

#[cfg(target_os = "linux")]
pub mod gpiochip;
#[cfg(target_os = "linux")]
pub mod rppal;
pub mod sim;

pub use sim::{SimBackend, SimProbe};

/// Highest BCM pin number accepted in the wiring (the 40-pin header's GPIO 0–27).
pub const MAX_PIN: u8 = 27;
/// Full period of the fast blink (held, overtime, failing storage): 500 ms on, 500 ms off.
pub const FAST_BLINK_PERIOD: Duration = Duration::from_millis(1000);
/// Full period of the slow blink (out of service): 1 s on, 1 s off.
pub const SLOW_BLINK_PERIOD: Duration = Duration::from_millis(2000);
/// The consumer name shown for the GPIO lines this process holds.
pub const CONSUMER: &str = "spa-hub";
/// The three lights of a channel, in the order used everywhere here.
pub const COLOURS: [&str; 3] = ["red", "amber", "green"];

// ---------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------

/// The BCM pins of one channel's three lights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChannelPins {
    pub red: u8,
    pub amber: u8,
    pub green: u8,
}

impl ChannelPins {
    /// `[red, amber, green]`.
    pub fn as_array(&self) -> [u8; 3] {
        [self.red, self.amber, self.green]
    }
}

/// A whole number made of ASCII digits only (no sign, no spaces).
fn parse_digits<T: FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `SPA_LIGHT_CHANNELS`: whitespace-separated `CHANNEL=RED,AMBER,GREEN`
/// definitions with BCM pin numbers, e.g. `1=17,27,22 2=5,6,13`. An empty (or
/// all-blank) string means no channels. The error is one sentence naming the bad
/// part and what is accepted.
pub fn parse_channels(text: &str) -> Result<BTreeMap<u16, ChannelPins>, String> {
    let mut channels: BTreeMap<u16, ChannelPins> = BTreeMap::new();
    let mut owners: BTreeMap<u8, (u16, &'static str)> = BTreeMap::new();
    for part in text.split_whitespace() {
        let Some((channel_text, pins_text)) = part.split_once('=') else {
            return Err(format!(
                "`{part}` is not a channel definition: write CHANNEL=RED,AMBER,GREEN with BCM \
                 pin numbers, for example `1=17,27,22`, and separate channels with spaces"
            ));
        };
        let channel = match parse_digits::<u32>(channel_text) {
            Some(0) => {
                return Err(format!(
                    "channel 0 in `{part}` is not allowed: channels are numbered from 1 to 65535"
                ))
            }
            Some(n) => u16::try_from(n).map_err(|_| {
                format!(
                    "channel {n} in `{part}` is too large: channels are numbered from 1 to 65535"
                )
            })?,
            None => {
                return Err(format!(
                    "`{channel_text}` in `{part}` is not a channel number: channels are whole \
                     numbers from 1 to 65535"
                ))
            }
        };
        if channels.contains_key(&channel) {
            return Err(format!(
                "channel {channel} is defined twice (again in `{part}`): define each channel once"
            ));
        }
        let fields: Vec<&str> = pins_text.split(',').collect();
        if fields.len() != 3 {
            return Err(format!(
                "`{part}` does not give exactly three pins for channel {channel}: write the red, \
                 amber and green BCM pins separated by commas, for example `{channel}=17,27,22`"
            ));
        }
        let mut pins = [0u8; 3];
        for (index, field) in fields.iter().enumerate() {
            let colour = COLOURS[index];
            let pin = match parse_digits::<u32>(field) {
                Some(n) if n <= u32::from(MAX_PIN) => n as u8,
                Some(n) => {
                    return Err(format!(
                        "the {colour} pin {n} of channel {channel} (in `{part}`) is outside 0–27: \
                         use the BCM numbers of the header's GPIO pins, 0 to 27"
                    ))
                }
                None => {
                    return Err(format!(
                        "the {colour} pin `{field}` of channel {channel} (in `{part}`) is not a \
                         pin number: use BCM numbers from 0 to 27"
                    ))
                }
            };
            if let Some(&(other_channel, other_colour)) = owners.get(&pin) {
                return Err(if other_channel == channel {
                    format!(
                        "pin {pin} is used twice in channel {channel} (for {other_colour} and \
                         {colour}): every light needs a pin of its own"
                    )
                } else {
                    format!(
                        "pin {pin} is used by channel {other_channel} ({other_colour}) and by \
                         channel {channel} ({colour}): every light needs a pin of its own"
                    )
                });
            }
            owners.insert(pin, (channel, colour));
            pins[index] = pin;
        }
        channels.insert(
            channel,
            ChannelPins {
                red: pins[0],
                amber: pins[1],
                green: pins[2],
            },
        );
    }
    Ok(channels)
}

/// Every configured pin, channel by channel, red, amber, green.
pub fn pins_of(channels: &BTreeMap<u16, ChannelPins>) -> Vec<u8> {
    channels.values().flat_map(|p| p.as_array()).collect()
}

// ---------------------------------------------------------------------------
// Backend kinds and statuses
// ---------------------------------------------------------------------------

/// `SPA_LIGHTS`: which backend drives the pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The first that works on this board: `gpio`, then `gpiochip`, then `sim`.
    #[default]
    Auto,
    /// rppal through `/dev/gpiomem` (Raspberry Pi OS kernels).
    Gpio,
    /// The Linux GPIO character device `/dev/gpiochip*` (any kernel).
    Gpiochip,
    /// Levels kept in memory.
    Sim,
    /// Nothing is driven.
    Off,
}

impl BackendKind {
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Auto,
        BackendKind::Gpio,
        BackendKind::Gpiochip,
        BackendKind::Sim,
        BackendKind::Off,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Gpio => "gpio",
            BackendKind::Gpiochip => "gpiochip",
            BackendKind::Sim => "sim",
            BackendKind::Off => "off",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = String;

    /// Case-insensitive, surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        BackendKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                format!("`{s}` is not a lights backend: use auto, gpio, gpiochip, sim or off")
            })
    }
}

/// What a channel shows. The caller maps room state to this; `Overtime` is a room
/// occupied past its planned end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LightStatus {
    Available,
    Held,
    Occupied,
    Overtime,
    Cleaning,
    OutOfService,
}

impl LightStatus {
    pub const ALL: [LightStatus; 6] = [
        LightStatus::Available,
        LightStatus::Held,
        LightStatus::Occupied,
        LightStatus::Overtime,
        LightStatus::Cleaning,
        LightStatus::OutOfService,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LightStatus::Available => "available",
            LightStatus::Held => "held",
            LightStatus::Occupied => "occupied",
            LightStatus::Overtime => "overtime",
            LightStatus::Cleaning => "cleaning",
            LightStatus::OutOfService => "out_of_service",
        }
    }
}

impl fmt::Display for LightStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------
// Patterns (pure)
// ---------------------------------------------------------------------------

/// Which blink a pattern uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlinkSpeed {
    /// [`FAST_BLINK_PERIOD`].
    Fast,
    /// [`SLOW_BLINK_PERIOD`].
    Slow,
}

/// The logical levels `[red, amber, green]` (`true` = lit) of a channel.
///
/// available = green; held = green blinking (fast); occupied = red; overtime = red
/// and amber blinking together (fast); cleaning = amber; out of service = red
/// blinking slowly; `None` (no room on the channel) = dark. Failing storage
/// overrides everything: amber flashing (fast) on every channel.
pub fn levels(
    status: Option<LightStatus>,
    storage_failing: bool,
    fast_phase_on: bool,
    slow_phase_on: bool,
) -> [bool; 3] {
    if storage_failing {
        return [false, fast_phase_on, false];
    }
    match status {
        None => [false, false, false],
        Some(LightStatus::Available) => [false, false, true],
        Some(LightStatus::Held) => [false, false, fast_phase_on],
        Some(LightStatus::Occupied) => [true, false, false],
        Some(LightStatus::Overtime) => [fast_phase_on, fast_phase_on, false],
        Some(LightStatus::Cleaning) => [false, true, false],
        Some(LightStatus::OutOfService) => [slow_phase_on, false, false],
    }
}

/// The blink a channel's pattern uses, if any.
pub fn blink_speed(status: Option<LightStatus>, storage_failing: bool) -> Option<BlinkSpeed> {
    if storage_failing {
        return Some(BlinkSpeed::Fast);
    }
    match status {
        Some(LightStatus::Held) | Some(LightStatus::Overtime) => Some(BlinkSpeed::Fast),
        Some(LightStatus::OutOfService) => Some(BlinkSpeed::Slow),
        _ => None,
    }
}

/// Whether a channel's pattern blinks.
pub fn blinks(status: Option<LightStatus>, storage_failing: bool) -> bool {
    blink_speed(status, storage_failing).is_some()
}

/// The blink periods. Each period is half on (first), half off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlinkTiming {
    pub fast_period: Duration,
    pub slow_period: Duration,
}

impl Default for BlinkTiming {
    fn default() -> Self {
        Self {
            fast_period: FAST_BLINK_PERIOD,
            slow_period: SLOW_BLINK_PERIOD,
        }
    }
}

/// Half periods shorter than this are raised to it (no division by zero, no spinning).
const MIN_HALF_PERIOD: Duration = Duration::from_millis(1);

fn half(period: Duration) -> Duration {
    (period / 2).max(MIN_HALF_PERIOD)
}

fn phase_on(elapsed: Duration, half: Duration) -> bool {
    // Even half-periods are "on" (bit test: `is_multiple_of` needs Rust 1.87).
    (elapsed.as_nanos() / half.as_nanos()) & 1 == 0
}

fn until_edge(elapsed: Duration, half: Duration) -> Duration {
    let half_ns = half.as_nanos();
    let left = half_ns - elapsed.as_nanos() % half_ns;
    Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
}

impl BlinkTiming {
    /// `(fast_phase_on, slow_phase_on)` at `elapsed` since the blink timer started.
    /// Both start on.
    pub fn phases(&self, elapsed: Duration) -> (bool, bool) {
        (
            phase_on(elapsed, half(self.fast_period)),
            phase_on(elapsed, half(self.slow_period)),
        )
    }

    /// How long after `elapsed` the next phase change of a blink in use (`fast`,
    /// `slow`) happens; `None` if neither is in use (nothing to wake up for).
    pub fn until_next_edge(&self, elapsed: Duration, fast: bool, slow: bool) -> Option<Duration> {
        let fast_edge = fast.then(|| until_edge(elapsed, half(self.fast_period)));
        let slow_edge = slow.then(|| until_edge(elapsed, half(self.slow_period)));
        match (fast_edge, slow_edge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `(fast_phase_on, slow_phase_on)` for the standard periods.
pub fn phases(elapsed: Duration) -> (bool, bool) {
    BlinkTiming::default().phases(elapsed)
}

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// A failure of a lights backend.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// The backend as a whole could not be opened.
    #[error("lights backend `{backend}` cannot start: {reason}")]
    Open {
        backend: &'static str,
        reason: String,
    },
    /// One pin could not be opened as an output.
    #[error("lights backend `{backend}` cannot open GPIO pin {pin}: {reason}")]
    OpenPin {
        backend: &'static str,
        pin: u8,
        reason: String,
    },
    /// Setting a pin's level failed.
    #[error("lights backend `{backend}` cannot set GPIO pin {pin}: {reason}")]
    Write {
        backend: &'static str,
        pin: u8,
        reason: String,
    },
}

/// Drives GPIO output pins. Implementations open every configured pin when they
/// are constructed; `set` only changes a level.
pub trait LightBackend: Send + 'static {
    /// The backend's name as `SPA_LIGHTS` spells it (`gpio`, `gpiochip`, `sim`, `off`).
    fn name(&self) -> &'static str;

    /// Sets `pin` to the electrical `level` (`true` = high). The caller has already
    /// inverted it for active-low boards.
    fn set(&mut self, pin: u8, level: bool) -> Result<(), LightError>;

    /// The in-memory levels, for the `sim` backend only.
    fn sim_probe(&self) -> Option<SimProbe> {
        None
    }
}

/// The `off` backend: drives nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct OffBackend;

impl LightBackend for OffBackend {
    fn name(&self) -> &'static str {
        "off"
    }

    fn set(&mut self, _pin: u8, _level: bool) -> Result<(), LightError> {
        Ok(())
    }
}

/// Whether a device-tree board model names a Raspberry Pi.
pub fn is_raspberry_pi_model(model: &str) -> bool {
    model.contains("Raspberry Pi")
}

/// Whether a GPIO chip label is a Raspberry Pi's own GPIO controller (the one
/// whose line numbers are the BCM pin numbers of the header).
pub fn is_pi_gpio_label(label: &str) -> bool {
    let label = label.trim();
    label.starts_with("pinctrl-bcm27")
        || label.starts_with("pinctrl-bcm28")
        || label.starts_with("pinctrl-rp1")
}

/// The board model from the device tree, if any.
pub fn board_model() -> Option<String> {
    [
        "/proc/device-tree/model",
        "/sys/firmware/devicetree/base/model",
    ]
    .into_iter()
    .filter_map(|path| std::fs::read(path).ok())
    .map(|bytes| {
        String::from_utf8_lossy(&bytes)
            .trim_end_matches('\0')
            .trim()
            .to_string()
    })
    .find(|model| !model.is_empty())
}

/// The rppal register device present on this machine, if any.
pub fn gpiomem_device() -> Option<&'static str> {
    ["/dev/gpiomem", "/dev/gpiomem0"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
}

/// A backend and the one log line saying why it was chosen.
pub type OpenedBackend = (Box<dyn LightBackend>, String);

/// Opens the backend `kind` with every pin in `pins` as an output at electrical
/// level low. See [`open_backend_with_level`] for active-low boards.
pub fn open_backend(kind: BackendKind, pins: &[u8]) -> Result<OpenedBackend, LightError> {
    open_backend_with_level(kind, pins, false)
}

/// Opens the backend `kind` with every pin in `pins` as an output at the
/// electrical level `idle_level` (pass `active_low`, so the lights start dark).
///
/// `Auto`: with no pins configured, `sim` off a Pi and `off` on one (no GPIO
/// is touched). Otherwise, if
/// `SPA_GPIOCHIP` names a chip, `gpiochip` on that chip; else `gpio` on a
/// Raspberry Pi with `/dev/gpiomem`; else (or if that fails) `gpiochip` on the
/// Pi's GPIO chip; else `sim`. A hardware backend that was chosen but cannot open
/// a pin is an error, never a silent fall-back to `sim`.
pub fn open_backend_with_level(
    kind: BackendKind,
    pins: &[u8],
    idle_level: bool,
) -> Result<OpenedBackend, LightError> {
    match kind {
        BackendKind::Off => Ok((
            Box::new(OffBackend),
            "lights backend off (SPA_LIGHTS=off): the lights are not driven".to_string(),
        )),
        BackendKind::Sim => Ok((
            Box::new(SimBackend::new(pins, idle_level)),
            "lights backend sim (SPA_LIGHTS=sim): pin levels are kept in memory".to_string(),
        )),
        BackendKind::Gpio => {
            without_wiring_ok(pins, open_gpio(pins, idle_level, "SPA_LIGHTS=gpio"))
        }
        BackendKind::Gpiochip => without_wiring_ok(pins, open_gpiochip(pins, idle_level)),
        BackendKind::Auto => open_auto(pins, idle_level),
    }
}

/// A GPIO backend that cannot open is a start-up error only when there is
/// something to drive: a box installed before its lights are wired (or an
/// image booted on a board without the GPIO controller) still runs.
fn without_wiring_ok(
    pins: &[u8],
    opened: Result<OpenedBackend, LightError>,
) -> Result<OpenedBackend, LightError> {
    match opened {
        Err(e) if pins.is_empty() => Ok((
            Box::new(OffBackend),
            format!("lights not driven: {e}; no channels are wired (SPA_LIGHT_CHANNELS is empty)"),
        )),
        other => other,
    }
}

#[cfg(target_os = "linux")]
fn open_gpio(pins: &[u8], idle_level: bool, why: &str) -> Result<OpenedBackend, LightError> {
    let backend = self::rppal::RppalBackend::open(pins, idle_level)?;
    Ok((
        Box::new(backend),
        format!("lights backend gpio ({why}): rppal through /dev/gpiomem"),
    ))
}

#[cfg(not(target_os = "linux"))]
fn open_gpio(_pins: &[u8], _idle_level: bool, _why: &str) -> Result<OpenedBackend, LightError> {
    Err(LightError::Open {
        backend: "gpio",
        reason: "the gpio backend exists on Linux only".to_string(),
    })
}

#[cfg(target_os = "linux")]
fn open_gpiochip(pins: &[u8], idle_level: bool) -> Result<OpenedBackend, LightError> {
    let (chip, how) = match gpiochip::env_chip() {
        Some(chip) => (chip, format!("named by {}", gpiochip::ENV_CHIP)),
        None => {
            let (chip, _label) = gpiochip::find_pi_chip().map_err(|notes| LightError::Open {
                backend: gpiochip::NAME,
                reason: format!(
                    "{notes}; set {}=/dev/gpiochipN to name the chip",
                    gpiochip::ENV_CHIP
                ),
            })?;
            (chip, "the Raspberry Pi's GPIO controller".to_string())
        }
    };
    let backend = gpiochip::GpiochipBackend::open(&chip, pins, idle_level)?;
    let why = format!(
        "lights backend gpiochip (SPA_LIGHTS=gpiochip): {} ({}), {how}",
        backend.chip().display(),
        backend.label()
    );
    Ok((Box::new(backend), why))
}

#[cfg(not(target_os = "linux"))]
fn open_gpiochip(_pins: &[u8], _idle_level: bool) -> Result<OpenedBackend, LightError> {
    Err(LightError::Open {
        backend: "gpiochip",
        reason: "the gpiochip backend exists on Linux only".to_string(),
    })
}

fn open_auto(pins: &[u8], idle_level: bool) -> Result<OpenedBackend, LightError> {
    let on_pi = board_model().is_some_and(|m| is_raspberry_pi_model(&m));
    if pins.is_empty() && !on_pi {
        // A developer's machine: simulated lights, so /healthz and the admin
        // page show what a Pi would (rooms get channels only once wired).
        return Ok((
            Box::new(SimBackend::new(pins, idle_level)),
            "lights backend sim (SPA_LIGHTS=auto): not a Raspberry Pi and no SPA_LIGHT_CHANNELS; \
             pin levels are kept in memory"
                .to_string(),
        ));
    }
    if pins.is_empty() {
        return Ok((
            Box::new(OffBackend),
            "lights backend off (SPA_LIGHTS=auto): SPA_LIGHT_CHANNELS defines no channel, so no \
             GPIO is touched"
                .to_string(),
        ));
    }
    let why_not = match auto_hardware(pins, idle_level)? {
        Ok(opened) => return Ok(opened),
        Err(why_not) => why_not,
    };
    Ok((
        Box::new(SimBackend::new(pins, idle_level)),
        format!("lights backend sim (SPA_LIGHTS=auto): {why_not}; pin levels are kept in memory"),
    ))
}

/// `Ok(Ok(backend))`: hardware found and opened; `Ok(Err(why_not))`: no hardware
/// here; `Err`: hardware found but it failed.
#[cfg(target_os = "linux")]
fn auto_hardware(
    pins: &[u8],
    idle_level: bool,
) -> Result<Result<OpenedBackend, String>, LightError> {
    if let Some(chip) = gpiochip::env_chip() {
        let backend = gpiochip::GpiochipBackend::open(&chip, pins, idle_level)?;
        let why = format!(
            "lights backend gpiochip (SPA_LIGHTS=auto): {} ({}) named by {}",
            backend.chip().display(),
            backend.label(),
            gpiochip::ENV_CHIP
        );
        return Ok(Ok((Box::new(backend), why)));
    }
    let model = board_model();
    let pi_model = model.as_deref().filter(|m| is_raspberry_pi_model(m));
    let mut gpio_error = None;
    if let (Some(model), Some(device)) = (pi_model, gpiomem_device()) {
        match open_gpio(
            pins,
            idle_level,
            &format!("SPA_LIGHTS=auto: {model} with {device}"),
        ) {
            Ok(opened) => return Ok(Ok(opened)),
            Err(e) => {
                log::warn!("lights: {e}; trying the gpiochip backend");
                gpio_error = Some(e);
            }
        }
    }
    match gpiochip::find_pi_chip() {
        Ok((chip, label)) => {
            let backend = gpiochip::GpiochipBackend::open(&chip, pins, idle_level)?;
            let why = format!(
                "lights backend gpiochip (SPA_LIGHTS=auto): {} is the Raspberry Pi's GPIO \
                 controller ({label}){}",
                backend.chip().display(),
                if gpio_error.is_some() {
                    ", after the gpio backend failed"
                } else if pi_model.is_some() {
                    ", and there is no /dev/gpiomem"
                } else {
                    ""
                }
            );
            Ok(Ok((Box::new(backend), why)))
        }
        Err(notes) => {
            if let Some(e) = gpio_error {
                return Err(e);
            }
            let why_not = match (&model, pi_model) {
                (Some(m), Some(_)) => format!("{m} without /dev/gpiomem, and {notes}"),
                (Some(m), None) => format!("`{m}` is not a Raspberry Pi, and {notes}"),
                (None, _) => {
                    format!("no device-tree board model (not a Raspberry Pi), and {notes}")
                }
            };
            if pi_model.is_some() {
                log::warn!("lights: a Raspberry Pi, but no GPIO backend works: {why_not}");
            }
            Ok(Err(why_not))
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn auto_hardware(
    _pins: &[u8],
    _idle_level: bool,
) -> Result<Result<OpenedBackend, String>, LightError> {
    Ok(Err("GPIO backends exist on Linux only".to_string()))
}

// ---------------------------------------------------------------------------
// The lights task
// ---------------------------------------------------------------------------

/// What one channel shows now, as last written: for `/healthz` and the admin page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelLevels {
    pub channel: u16,
    pub pins: ChannelPins,
    /// Logical levels (`true` = lit), whatever the board's polarity.
    pub red: bool,
    pub amber: bool,
    pub green: bool,
    /// The status shown; `None` when no room uses the channel.
    pub status: Option<LightStatus>,
    pub storage_failing: bool,
    pub blinking: bool,
    /// The last error of one of the channel's pins, while it persists.
    pub fault: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Desired {
    rooms: BTreeMap<u16, LightStatus>,
    storage_failing: bool,
    shutdown: bool,
}

#[derive(Debug)]
struct Shared {
    desired: Mutex<Desired>,
    levels: Mutex<Vec<ChannelLevels>>,
    stopped: Mutex<bool>,
    stopped_cv: Condvar,
    /// Pin failures logged (once per pin until it works again).
    faults_logged: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handle on the lights task. Cheap to clone; no method blocks or awaits the
/// GPIO. When the last handle is dropped the task switches the lights off and ends.
#[derive(Clone)]
pub struct Lights {
    shared: Arc<Shared>,
    wake: SyncSender<()>,
    stopped_rx: tokio::sync::watch::Receiver<bool>,
    channels: Arc<BTreeMap<u16, ChannelPins>>,
    backend: &'static str,
    active_low: bool,
    probe: Option<SimProbe>,
}

impl fmt::Debug for Lights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lights")
            .field("backend", &self.backend)
            .field("channels", &self.channels)
            .field("active_low", &self.active_low)
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// Starts the lights task with the standard blink periods. All lights are dark
/// until [`Lights::set_rooms`] is called.
pub fn spawn(
    backend: Box<dyn LightBackend>,
    channels: BTreeMap<u16, ChannelPins>,
    active_low: bool,
) -> Lights {
    spawn_with_timing(backend, channels, active_low, BlinkTiming::default())
}

/// [`spawn`] with other blink periods (tests use short ones).
pub fn spawn_with_timing(
    backend: Box<dyn LightBackend>,
    channels: BTreeMap<u16, ChannelPins>,
    active_low: bool,
    timing: BlinkTiming,
) -> Lights {
    let backend_name = backend.name();
    let probe = backend.sim_probe();
    let channels = Arc::new(channels);
    let dark: Vec<ChannelLevels> = channels
        .iter()
        .map(|(&channel, &pins)| ChannelLevels {
            channel,
            pins,
            red: false,
            amber: false,
            green: false,
            status: None,
            storage_failing: false,
            blinking: false,
            fault: None,
        })
        .collect();
    let shared = Arc::new(Shared {
        desired: Mutex::new(Desired::default()),
        levels: Mutex::new(dark),
        stopped: Mutex::new(false),
        stopped_cv: Condvar::new(),
        faults_logged: AtomicU64::new(0),
    });
    let (wake_tx, wake_rx) = mpsc::sync_channel(1);
    let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
    let guard = StopGuard {
        shared: Arc::clone(&shared),
        stopped_tx,
    };
    let worker = Worker {
        backend,
        channels: Arc::clone(&channels),
        active_low,
        timing,
        shared: Arc::clone(&shared),
        written: BTreeMap::new(),
        faults: BTreeMap::new(),
        epoch: Instant::now(),
        was_blinking: false,
    };
    let spawned = std::thread::Builder::new()
        .name("spa-hub-lights".to_string())
        .spawn(move || {
            let _guard = guard;
            worker.run(wake_rx);
        });
    if let Err(e) = spawned {
        // The closure was dropped: the worker switched every pin off and the
        // guard marked the task stopped.
        log::error!("lights: cannot start the lights thread ({e}); the room lights are not driven");
    }
    Lights {
        shared,
        wake: wake_tx,
        stopped_rx,
        channels,
        backend: backend_name,
        active_low,
        probe,
    }
}

impl Lights {
    /// Sets the full desired state: channel → status. Channels absent are dark;
    /// channels that are not configured are ignored. Returns at once.
    pub fn set_rooms(&self, map: BTreeMap<u16, LightStatus>) {
        lock(&self.shared.desired).rooms = map;
        self.wake();
    }

    /// While storage is failing every channel flashes amber. Returns at once.
    pub fn set_storage_failing(&self, failing: bool) {
        let changed = {
            let mut desired = lock(&self.shared.desired);
            let changed = desired.storage_failing != failing;
            desired.storage_failing = failing;
            changed
        };
        if changed {
            self.wake();
        }
    }

    /// The levels last written, per configured channel, in channel order.
    pub fn levels(&self) -> Vec<ChannelLevels> {
        lock(&self.shared.levels).clone()
    }

    /// Asks the task to switch every light off and end. Returns at once; wait
    /// with [`Lights::stopped`] or [`Lights::wait_stopped`].
    pub fn shutdown(&self) {
        lock(&self.shared.desired).shutdown = true;
        self.wake();
    }

    /// Completes when the task has ended and every light was switched off. A GPIO
    /// write that never returns keeps this pending: bound it with a timeout.
    pub async fn stopped(&self) {
        let mut rx = self.stopped_rx.clone();
        // An error means the sender is gone, which only happens once stopped.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Blocks up to `timeout` for the task to end; `true` if it has.
    pub fn wait_stopped(&self, timeout: Duration) -> bool {
        let stopped = lock(&self.shared.stopped);
        let (stopped, _) = self
            .shared
            .stopped_cv
            .wait_timeout_while(stopped, timeout, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }

    /// Whether the task has ended.
    pub fn is_stopped(&self) -> bool {
        *lock(&self.shared.stopped)
    }

    /// The backend's name (`gpio`, `gpiochip`, `sim`, `off`).
    pub fn backend_name(&self) -> &'static str {
        self.backend
    }

    /// The wiring the task drives.
    pub fn channels(&self) -> &BTreeMap<u16, ChannelPins> {
        &self.channels
    }

    pub fn active_low(&self) -> bool {
        self.active_low
    }

    /// The electrical pin levels, when the backend is `sim`.
    pub fn sim_probe(&self) -> Option<SimProbe> {
        self.probe.clone()
    }

    fn wake(&self) {
        // Full: a wake-up is already pending and the task will read the newest
        // desired state. Disconnected: the task has ended.
        let _ = self.wake.try_send(());
    }
}

/// Marks the task stopped when the thread ends, however it ends.
struct StopGuard {
    shared: Arc<Shared>,
    stopped_tx: tokio::sync::watch::Sender<bool>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        *lock(&self.shared.stopped) = true;
        self.shared.stopped_cv.notify_all();
        self.stopped_tx.send_replace(true);
    }
}

struct Worker {
    backend: Box<dyn LightBackend>,
    channels: Arc<BTreeMap<u16, ChannelPins>>,
    active_low: bool,
    timing: BlinkTiming,
    shared: Arc<Shared>,
    /// Electrical level known to be on each pin (absent: unknown, write it).
    written: BTreeMap<u8, bool>,
    /// Pins whose last write failed, with the error.
    faults: BTreeMap<u8, String>,
    /// When the blink timer started (phases count from here).
    epoch: Instant,
    was_blinking: bool,
}

impl Worker {
    fn run(mut self, wake: Receiver<()>) {
        loop {
            let desired = lock(&self.shared.desired).clone();
            if desired.shutdown {
                break;
            }
            let next_edge = self.apply(&desired.rooms, desired.storage_failing);
            let received = match next_edge {
                // Blinking: sleep until the next phase change or a new state.
                Some(deadline) => {
                    wake.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                }
                // Nothing blinks: sleep until a new state, however long.
                None => wake.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            if let Err(RecvTimeoutError::Disconnected) = received {
                // Every handle is gone.
                break;
            }
        }
        // Dropping `self` switches every light off.
    }

    /// Writes the pattern for now; returns when the next blink edge is due, if
    /// anything blinks.
    fn apply(
        &mut self,
        rooms: &BTreeMap<u16, LightStatus>,
        storage_failing: bool,
    ) -> Option<Instant> {
        let channels = Arc::clone(&self.channels);
        let (mut fast, mut slow) = (false, false);
        for channel in channels.keys() {
            match blink_speed(rooms.get(channel).copied(), storage_failing) {
                Some(BlinkSpeed::Fast) => fast = true,
                Some(BlinkSpeed::Slow) => slow = true,
                None => {}
            }
        }
        let blinking = fast || slow;
        let now = Instant::now();
        if blinking && !self.was_blinking {
            // Start the timer in the "on" phase, so a change shows at once.
            self.epoch = now;
        }
        self.was_blinking = blinking;
        let elapsed = now.saturating_duration_since(self.epoch);
        let (fast_on, slow_on) = self.timing.phases(elapsed);

        let mut report = Vec::with_capacity(channels.len());
        for (&channel, &pins) in channels.iter() {
            let status = rooms.get(&channel).copied();
            let lit = levels(status, storage_failing, fast_on, slow_on);
            for (pin, on) in pins.as_array().into_iter().zip(lit) {
                self.write(pin, on != self.active_low);
            }
            report.push(ChannelLevels {
                channel,
                pins,
                red: lit[0],
                amber: lit[1],
                green: lit[2],
                status,
                storage_failing,
                blinking: blinks(status, storage_failing),
                fault: pins
                    .as_array()
                    .iter()
                    .find_map(|pin| self.faults.get(pin).cloned()),
            });
        }
        *lock(&self.shared.levels) = report;

        self.timing
            .until_next_edge(elapsed, fast, slow)
            .and_then(|wait| now.checked_add(wait))
    }

    /// Writes `level` to `pin` unless the pin is known to have it already.
    fn write(&mut self, pin: u8, level: bool) {
        if self.written.get(&pin) == Some(&level) {
            return;
        }
        match self.backend.set(pin, level) {
            Ok(()) => {
                self.written.insert(pin, level);
                if self.faults.remove(&pin).is_some() {
                    log::info!("lights: GPIO pin {pin} works again");
                }
            }
            Err(e) => {
                // Unknown level now: try again at the next change or blink edge.
                self.written.remove(&pin);
                if !self.faults.contains_key(&pin) {
                    log::error!(
                        "lights: {e} (logged once; retried quietly until the pin works again)"
                    );
                    self.shared.faults_logged.fetch_add(1, Ordering::Relaxed);
                }
                self.faults.insert(pin, e.to_string());
            }
        }
    }

    /// Switches every pin off, whatever it is believed to show.
    fn all_off(&mut self) {
        self.written.clear();
        let pins: BTreeSet<u8> = self.channels.values().flat_map(|p| p.as_array()).collect();
        for pin in pins {
            self.write(pin, self.active_low);
        }
        let mut levels = lock(&self.shared.levels);
        for channel in levels.iter_mut() {
            channel.red = false;
            channel.amber = false;
            channel.green = false;
            channel.status = None;
            channel.blinking = false;
            channel.fault = channel
                .pins
                .as_array()
                .iter()
                .find_map(|pin| self.faults.get(pin).cloned());
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.all_off();
    }
}

// ---------------------------------------------------------------------------
// Walk test
// ---------------------------------------------------------------------------

/// `spa-hub lights test`: walks every configured channel through red, amber and
/// green (`step` each) and then off, printing each step to `out`, for an
/// installer standing in the corridor. Every light is off at the end. A pin that
/// fails is reported on its line and the walk goes on; the first failure is
/// returned at the end.
pub fn walk_test(
    backend: &mut dyn LightBackend,
    channels: &BTreeMap<u16, ChannelPins>,
    active_low: bool,
    step: Duration,
    out: &mut dyn Write,
) -> Result<(), LightError> {
    let mut first_error: Option<LightError> = None;
    let mut set = |backend: &mut dyn LightBackend, pin: u8, lit: bool| -> Option<String> {
        match backend.set(pin, lit != active_low) {
            Ok(()) => None,
            Err(e) => {
                let text = e.to_string();
                first_error.get_or_insert(e);
                Some(text)
            }
        }
    };
    // Output errors (a closed stdout) must not stop the walk with lights on.
    let mut say = |line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };

    let all: Vec<u8> = pins_of(channels);
    if all.is_empty() {
        say("no light channels are configured (SPA_LIGHT_CHANNELS is empty)".to_string());
        return Ok(());
    }
    say(format!(
        "walking {} channel(s) on the {} backend{}, {} ms per light",
        channels.len(),
        backend.name(),
        if active_low { " (active low)" } else { "" },
        step.as_millis()
    ));
    for &pin in &all {
        if let Some(e) = set(backend, pin, false) {
            say(format!("switching pin {pin} off failed: {e}"));
        }
    }
    for (&channel, &pins) in channels {
        let array = pins.as_array();
        for (index, colour) in COLOURS.iter().enumerate() {
            let mut failures = Vec::new();
            // Switch the others off first, so two lights are never on together.
            for (other, &pin) in array.iter().enumerate() {
                if other != index {
                    failures.extend(set(backend, pin, false));
                }
            }
            failures.extend(set(backend, array[index], true));
            let mut line = format!("channel {channel}: {colour} (BCM {})", array[index]);
            if !failures.is_empty() {
                line.push_str(&format!(" FAILED: {}", failures.join("; ")));
            }
            say(line);
            std::thread::sleep(step);
        }
        let failures: Vec<String> = array
            .iter()
            .filter_map(|&pin| set(backend, pin, false))
            .collect();
        if failures.is_empty() {
            say(format!("channel {channel}: off"));
        } else {
            say(format!(
                "channel {channel}: off FAILED: {}",
                failures.join("; ")
            ));
        }
    }
    say("done: every light is off".to_string());
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
