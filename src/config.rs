//! Configuration: the environment plus an optional env file → [`Config`].
//!
//! Every key of APPLIANCE.md's table, with its default. A bad value is a
//! [`ConfigError`] naming the key, the value and what is accepted; the CLI
//! prints it as one line and exits 78 (EX_CONFIG). Unknown `SPA_*` keys are
//! returned as warnings so a typo does not pass silently. When a key is both
//! in the process environment and in the env file, the environment wins (as
//! with `Environment=` overriding `EnvironmentFile=` in a unit and with
//! dotenv tools), so a one-off `SPA_LOG=debug spa-hub serve --env-file …` works.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use log::LevelFilter;

pub use access::AddrRule;
pub use nats::{HqConfig, NatsCreds, NatsServer, NatsSettings};

use crate::lights::{parse_channels, BackendKind, ChannelPins};
use crate::logging::LogTarget;

/// Exit status for configuration errors (sysexits.h EX_CONFIG).
pub const EX_CONFIG: i32 = 78;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_connections: usize,
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub max_payload_bytes: usize,
    pub client_queue: usize,
    /// `None`: generated on first start and kept in `data_dir/admin-token`.
    pub admin_token: Option<String>,
    pub allowed_origins: Vec<String>,
    pub lights: BackendKind,
    pub light_channels: BTreeMap<u16, ChannelPins>,
    pub lights_active_low: bool,
    pub discount_approval_percent: u32,
    /// IANA name, or `None` for the system's zone.
    pub timezone: Option<String>,
    pub log_level: LevelFilter,
    pub log_target: LogTarget,
    /// sled's page cache, in MB.
    pub sled_cache_mb: u64,
    /// How long a staff session lasts, in hours.
    pub session_hours: u64,
    /// How long a client may take to send CONNECT (PROTOCOL.md: 45 s).
    pub connect_timeout_ms: u64,
    /// How long an HTTP request's headers, and then its body, may take.
    pub request_timeout_ms: u64,
    /// HTTP connections not yet upgraded, all addresses together.
    pub max_http_connections: usize,
    /// HTTP connections, and WebSockets before CONNECT, per address.
    pub max_pending_per_address: usize,
    /// Live connections per customer link, device token or staff session.
    pub max_connections_per_token: usize,
    /// The share of the budget customers cannot take.
    pub staff_reserve_percent: u32,
    /// PIN checks (argon2, 8 MiB each) at once; more get 503.
    pub login_concurrency: usize,
    /// Where the hub is reached (its origin is allowed to connect).
    pub public_url: Option<String>,
    /// Who may read `/healthz` and `/metrics`.
    pub metrics_allow: Vec<AddrRule>,
    /// The book's settings.
    pub book: BookSettings,
    /// Currency, tax and the receipt printer (#17).
    pub counter: counter::CounterSettings,
    /// Where the clock's synchronisation is read (`SPA_TIMESYNC_FILE`).
    pub timesync: crate::clock::SyncSource,
    /// `SPA_TLS_CERT` and `SPA_TLS_KEY`: HTTPS and WSS on `listen`.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Publishing the event log to NATS JetStream (a site in a chain).
    pub nats: Option<NatsSettings>,
}

/// The `SPA_BOOKING_*`, `SPA_NO_SHOW_GRACE_MIN` and
/// `SPA_CANCEL_CUTOFF_HOURS` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSettings {
    pub grid_min: u32,
    pub horizon_days: u32,
    pub buffer_min: u32,
    pub no_show_grace_min: u32,
    pub cancel_cutoff_hours: u32,
    pub counts_turn: bool,
}

impl BookSettings {
    fn from(src: &Source) -> Result<BookSettings, ConfigError> {
        let grid_min = number(src, "SPA_BOOKING_GRID_MIN", 15u32, 1, 60)?;
        if 60 % grid_min != 0 {
            return Err(err(
                "SPA_BOOKING_GRID_MIN",
                &grid_min.to_string(),
                "a divisor of 60 (1, 5, 10, 15, 20, 30 or 60)",
            ));
        }
        Ok(BookSettings {
            grid_min,
            horizon_days: number(src, "SPA_BOOKING_HORIZON_DAYS", 90u32, 1, 730)?,
            buffer_min: number(src, "SPA_BOOKING_BUFFER_MIN", 5u32, 0, 120)?,
            no_show_grace_min: number(src, "SPA_NO_SHOW_GRACE_MIN", 15u32, 1, 240)?,
            cancel_cutoff_hours: number(src, "SPA_CANCEL_CUTOFF_HOURS", 24u32, 0, 24 * 14)?,
            counts_turn: boolean(src, "SPA_BOOKING_COUNTS_TURN", false)?,
        })
    }

    fn describe(&self) -> Vec<(String, String)> {
        [
            ("SPA_BOOKING_GRID_MIN", self.grid_min.to_string()),
            ("SPA_BOOKING_HORIZON_DAYS", self.horizon_days.to_string()),
            ("SPA_BOOKING_BUFFER_MIN", self.buffer_min.to_string()),
            ("SPA_NO_SHOW_GRACE_MIN", self.no_show_grace_min.to_string()),
            (
                "SPA_CANCEL_CUTOFF_HOURS",
                self.cancel_cutoff_hours.to_string(),
            ),
            ("SPA_BOOKING_COUNTS_TURN", self.counts_turn.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value:?} is not valid: expected {accepted}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub accepted: String,
}

/// One key's table row: name, default (as text), meaning.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("SPA_LISTEN", "0.0.0.0:5000", "HTTP + Socket.IO address"),
    (
        "SPA_DATA_DIR",
        "./spa-hub-data",
        "sled database and the generated admin token",
    ),
    ("SPA_MAX_CONNECTIONS", "500", "connection budget"),
    ("SPA_PING_INTERVAL_MS", "25000", "Engine.IO ping interval"),
    ("SPA_PING_TIMEOUT_MS", "20000", "Engine.IO ping timeout"),
    ("SPA_MAX_PAYLOAD_BYTES", "65536", "largest inbound frame"),
    (
        "SPA_CLIENT_QUEUE",
        "256",
        "events queued for one client before it is dropped",
    ),
    (
        "SPA_ADMIN_TOKEN",
        "(generated on first start)",
        "admin credential",
    ),
    (
        "SPA_ALLOWED_ORIGINS",
        "",
        "extra browser origins allowed to connect",
    ),
    ("SPA_LIGHTS", "auto", "auto, gpio, gpiochip, sim or off"),
    (
        "SPA_LIGHT_CHANNELS",
        "",
        "wiring: `1=17,27,22 2=5,6,13` (channel=red,amber,green BCM pins)",
    ),
    (
        "SPA_LIGHTS_ACTIVE_LOW",
        "false",
        "relay boards that switch on a low level",
    ),
    (
        "SPA_DISCOUNT_APPROVAL_PERCENT",
        "20",
        "discounts above this need an admin",
    ),
    ("SPA_TIMEZONE", "(the system's)", "the spa's day boundary"),
    ("SPA_LOG", "info", "log level"),
    ("SPA_LOG_TARGET", "auto", "auto, journal or stderr"),
    ("SPA_SLED_CACHE_MB", "32", "sled page cache size"),
    ("SPA_SESSION_HOURS", "12", "staff login lifetime"),
    (
        "SPA_GPIOCHIP",
        "",
        "GPIO chip for the gpiochip backend (e.g. /dev/gpiochip0)",
    ),
    (
        "SPA_CONNECT_TIMEOUT_MS",
        "45000",
        "how long a new connection may take to send CONNECT",
    ),
    (
        "SPA_REQUEST_TIMEOUT_MS",
        "10000",
        "how long an HTTP request's headers, then its body, may take",
    ),
    (
        "SPA_MAX_HTTP_CONNECTIONS",
        "256",
        "HTTP connections not yet upgraded to WebSocket",
    ),
    (
        "SPA_MAX_PENDING_PER_ADDRESS",
        "32",
        "HTTP connections, and WebSockets before CONNECT, per address",
    ),
    (
        "SPA_MAX_CONNECTIONS_PER_TOKEN",
        "16",
        "live connections per customer link, device token or staff session",
    ),
    (
        "SPA_STAFF_RESERVE_PERCENT",
        "10",
        "share of the budget customers cannot take",
    ),
    (
        "SPA_LOGIN_CONCURRENCY",
        "2",
        "PIN checks at once (8 MiB each); more get 503",
    ),
    (
        "SPA_PUBLIC_URL",
        "",
        "the URL the hub is reached at (its origin may connect)",
    ),
    (
        "SPA_TLS_CERT",
        "",
        "PEM certificate (chain): serve HTTPS and WSS on SPA_LISTEN (see `spa-hub tls init`)",
    ),
    ("SPA_TLS_KEY", "", "PEM private key of SPA_TLS_CERT (mode 0600)"),
    (
        "SPA_TIMESYNC_FILE",
        "/run/systemd/timesync/synchronized",
        "the clock counts as synchronised while this file exists (set: only the file; unset: also timedatectl)",
    ),
    (
        "SPA_METRICS_ALLOW",
        "private",
        "who may read /healthz and /metrics: all, or addresses, CIDRs, loopback, private",
    ),
    ("SPA_BOOKING_GRID_MIN", "15", "bookings start on this grid"),
    (
        "SPA_BOOKING_HORIZON_DAYS",
        "90",
        "how far ahead bookings go",
    ),
    (
        "SPA_BOOKING_BUFFER_MIN",
        "5",
        "slack a walk-in leaves before the next booking",
    ),
    (
        "SPA_NO_SHOW_GRACE_MIN",
        "15",
        "a booking not checked in this long after its start is a no-show",
    ),
    (
        "SPA_CANCEL_CUTOFF_HOURS",
        "24",
        "customers cancel through their link until this long before",
    ),
    (
        "SPA_BOOKING_COUNTS_TURN",
        "false",
        "a booked session counts as a rotation turn",
    ),
];

/// Keys read elsewhere (tests, the lights) that are not warned about.
fn is_known(key: &str) -> bool {
    KEYS.iter()
        .chain(nats::KEYS)
        .chain(counter::KEYS)
        .any(|(k, _, _)| *k == key)
}

/// Reads a systemd-style env file: `KEY=value` lines, `#` comments, blank
/// lines, optional `export `, values optionally in single or double quotes.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("env file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "env file {} line {}: expected KEY=value, found {line:?}",
                path.display(),
                n + 1
            ));
        };
        let key = key.trim();
        let mut value = value.trim();
        for q in ['"', '\''] {
            if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
                value = &value[1..value.len() - 1];
            }
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// The raw key/value view a `Config` is built from.
#[derive(Debug, Default, Clone)]
pub struct Source {
    values: HashMap<String, String>,
}

impl Source {
    /// The process environment over the env file (if any).
    pub fn load(env_file: Option<&Path>) -> Result<Source, String> {
        let mut values = HashMap::new();
        if let Some(path) = env_file {
            for (k, v) in read_env_file(path)? {
                values.insert(k, v);
            }
        }
        for (k, v) in std::env::vars() {
            if k.starts_with("SPA_") {
                values.insert(k, v);
            }
        }
        Ok(Source { values })
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Source {
        Source {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// `SPA_*` keys this version does not know.
    pub fn unknown_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .values
            .keys()
            .filter(|k| k.starts_with("SPA_") && !is_known(k))
            .cloned()
            .collect();
        keys.sort();
        keys
    }
}

fn err(key: &str, value: &str, accepted: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        accepted: accepted.into(),
    }
}

fn number<T>(src: &Source, key: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display,
{
    match src.get(key) {
        None => Ok(default),
        Some(raw) => {
            let accepted = format!("a whole number from {min} to {max}");
            let v: T = raw
                .trim()
                .parse()
                .map_err(|_| err(key, raw, accepted.clone()))?;
            if v < min || v > max {
                return Err(err(key, raw, accepted));
            }
            Ok(v)
        }
    }
}

fn boolean(src: &Source, key: &str, default: bool) -> Result<bool, ConfigError> {
    match src.get(key).map(|v| (v, v.trim().to_ascii_lowercase())) {
        None => Ok(default),
        Some((_, v)) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some((_, v)) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some((raw, _)) => Err(err(key, raw, "true or false (also 1/0, yes/no, on/off)")),
    }
}

fn check_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    (scheme == "http" || scheme == "https")
        && !rest.is_empty()
        && !rest.contains('/')
        && !rest.contains(char::is_whitespace)
}

/// The origin (`scheme://host[:port]`, lower case) of an http(s) URL.
pub fn public_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty()
        || authority.contains('@')
        || authority.contains(char::is_whitespace)
        || authority.contains('\\')
    {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// `SPA_TLS_CERT` and `SPA_TLS_KEY`: both or neither; the pair must load
/// (PEM, the key belongs to the certificate, not expired).
fn tls_files(src: &Source) -> Result<Option<crate::tls::TlsFiles>, ConfigError> {
    let get = |k| src.get(k).map(str::trim).filter(|v| !v.is_empty());
    let (cert, key) = match (get("SPA_TLS_CERT"), get("SPA_TLS_KEY")) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(c), None) => {
            return Err(err(
                "SPA_TLS_KEY",
                "",
                format!("the private key of SPA_TLS_CERT={c} (both are needed for HTTPS)"),
            ))
        }
        (None, Some(k)) => {
            return Err(err(
                "SPA_TLS_CERT",
                "",
                format!("the certificate of SPA_TLS_KEY={k} (both are needed for HTTPS)"),
            ))
        }
    };
    let files = crate::tls::TlsFiles {
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
    };
    crate::tls::server_config(&files, jiff::Timestamp::now().as_millisecond()).map_err(|why| {
        err(
            "SPA_TLS_CERT",
            cert,
            format!("a PEM certificate, not expired, whose key is SPA_TLS_KEY ({why})"),
        )
    })?;
    Ok(Some(files))
}

/// Checks that the data directory is usable: an existing directory we can
/// list, or a path whose nearest existing parent is a directory.
/// A listening address (`key`, default all interfaces on `port`).
fn listen_addr(src: &Source, key: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    match src.get(key) {
        None => Ok(SocketAddr::from(([0, 0, 0, 0], port))),
        Some(raw) => raw.trim().parse().map_err(|_| {
            err(
                key,
                raw,
                format!("an address and port such as 0.0.0.0:{port} or [::]:{port}"),
            )
        }),
    }
}

fn check_data_dir(key: &str, raw: &str) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(raw);
    if raw.trim().is_empty() {
        return Err(err(key, raw, "a directory path"));
    }
    if path.exists() {
        if !path.is_dir() {
            return Err(err(key, raw, "a directory (this path is a file)"));
        }
        if let Err(e) = std::fs::read_dir(&path) {
            return Err(err(key, raw, format!("a readable directory ({e})")));
        }
        let probe = path.join(".spa-hub-write-test");
        match std::fs::write(&probe, b"") {
            Ok(()) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => return Err(err(key, raw, format!("a writable directory ({e})"))),
        }
    } else {
        let mut parent = path.parent().map(Path::to_path_buf);
        while let Some(p) = parent.clone() {
            if p.as_os_str().is_empty() || p.exists() {
                break;
            }
            parent = p.parent().map(Path::to_path_buf);
        }
        if let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            if !p.is_dir() {
                return Err(err(
                    key,
                    raw,
                    format!("a directory path ({} is not a directory)", p.display()),
                ));
            }
        }
    }
    Ok(path)
}

impl Config {
    pub fn from_source(src: &Source) -> Result<Config, ConfigError> {
        let listen = listen_addr(src, "SPA_LISTEN", 5000)?;
        let data_dir = check_data_dir(
            "SPA_DATA_DIR",
            src.get("SPA_DATA_DIR").unwrap_or("./spa-hub-data"),
        )?;
        let max_connections = number(src, "SPA_MAX_CONNECTIONS", 500usize, 1, 100_000)?;
        let ping_interval_ms = number(src, "SPA_PING_INTERVAL_MS", 25_000u64, 1_000, 600_000)?;
        let ping_timeout_ms = number(src, "SPA_PING_TIMEOUT_MS", 20_000u64, 1_000, 600_000)?;
        let max_payload_bytes = number(
            src,
            "SPA_MAX_PAYLOAD_BYTES",
            65_536usize,
            1_024,
            16 * 1024 * 1024,
        )?;
        let client_queue = number(src, "SPA_CLIENT_QUEUE", 256usize, 8, 65_536)?;
        let admin_token = match src.get("SPA_ADMIN_TOKEN").map(str::trim) {
            None | Some("") => None,
            Some(t) if t.len() >= 16 && t.chars().all(|c| c.is_ascii_graphic()) => Some(t.to_string()),
            Some(t) => {
                return Err(err(
                    "SPA_ADMIN_TOKEN",
                    &"*".repeat(t.len().min(8)),
                    "at least 16 printable characters without spaces (or leave it unset to generate one)",
                ))
            }
        };
        let allowed_origins: Vec<String> = match src.get("SPA_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(raw) => {
                let list: Vec<String> = raw
                    .split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim_end_matches('/').to_string())
                    .collect();
                if let Some(bad) = list.iter().find(|o| !check_origin(o)) {
                    return Err(err(
                        "SPA_ALLOWED_ORIGINS",
                        raw,
                        format!("origins like http://tablet.local:8080, separated by commas ({bad:?} is not one)"),
                    ));
                }
                list
            }
        };
        let lights = match src.get("SPA_LIGHTS") {
            None => BackendKind::Auto,
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| err("SPA_LIGHTS", raw, "one of auto, gpio, gpiochip, sim, off"))?,
        };
        let light_channels = match src.get("SPA_LIGHT_CHANNELS") {
            None => BTreeMap::new(),
            Some(raw) => parse_channels(raw).map_err(|e| err("SPA_LIGHT_CHANNELS", raw, e))?,
        };
        let lights_active_low = boolean(src, "SPA_LIGHTS_ACTIVE_LOW", false)?;
        let discount_approval_percent =
            number(src, "SPA_DISCOUNT_APPROVAL_PERCENT", 20u32, 0, 100)?;
        let timezone = match src.get("SPA_TIMEZONE").map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                jiff::tz::TimeZone::get(name).map_err(|_| {
                    err(
                        "SPA_TIMEZONE",
                        name,
                        "an IANA time zone name such as Europe/Paris or Asia/Ho_Chi_Minh",
                    )
                })?;
                Some(name.to_string())
            }
        };
        let log_level = match src.get("SPA_LOG") {
            None => LevelFilter::Info,
            Some(raw) => raw.trim().parse().map_err(|_| {
                err(
                    "SPA_LOG",
                    raw,
                    "one of error, warn, info, debug, trace, off",
                )
            })?,
        };
        let log_target = match src.get("SPA_LOG_TARGET") {
            None => LogTarget::Auto,
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: String| err("SPA_LOG_TARGET", raw, e))?,
        };
        let sled_cache_mb = number(src, "SPA_SLED_CACHE_MB", 32u64, 4, 4096)?;
        let session_hours = number(src, "SPA_SESSION_HOURS", 12u64, 1, 24 * 30)?;
        let connect_timeout_ms = number(src, "SPA_CONNECT_TIMEOUT_MS", 45_000u64, 100, 600_000)?;
        let request_timeout_ms = number(src, "SPA_REQUEST_TIMEOUT_MS", 10_000u64, 100, 600_000)?;
        let max_http_connections = number(src, "SPA_MAX_HTTP_CONNECTIONS", 256usize, 8, 100_000)?;
        let max_pending_per_address =
            number(src, "SPA_MAX_PENDING_PER_ADDRESS", 32usize, 1, 100_000)?;
        let max_connections_per_token =
            number(src, "SPA_MAX_CONNECTIONS_PER_TOKEN", 16usize, 1, 100_000)?;
        let staff_reserve_percent = number(src, "SPA_STAFF_RESERVE_PERCENT", 10u32, 0, 90)?;
        let login_concurrency = number(src, "SPA_LOGIN_CONCURRENCY", 2usize, 1, 64)?;
        let public_url = match src.get("SPA_PUBLIC_URL").map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let origin = public_origin(raw).ok_or_else(|| {
                    err(
                        "SPA_PUBLIC_URL",
                        raw,
                        "an http or https URL such as http://spa-hub.local:5000",
                    )
                })?;
                Some(origin)
            }
        };
        let metrics_allow = match src.get("SPA_METRICS_ALLOW") {
            None => access::default_rules(),
            Some(raw) => access::parse(raw).map_err(|bad| {
                err(
                    "SPA_METRICS_ALLOW",
                    raw,
                    format!("all, or addresses, CIDR networks (192.168.1.0/24), loopback or private, separated by commas ({bad:?} is not one)"),
                )
            })?,
        };
        let timesync = match src.get("SPA_TIMESYNC_FILE").map(str::trim) {
            None => crate::clock::SyncSource::default(),
            Some("") => return Err(err("SPA_TIMESYNC_FILE", "", "a file path")),
            Some(path) => crate::clock::SyncSource {
                file: PathBuf::from(path),
                file_only: true,
            },
        };
        let tls = tls_files(src)?;
        Ok(Config {
            listen,
            data_dir,
            max_connections,
            ping_interval_ms,
            ping_timeout_ms,
            max_payload_bytes,
            client_queue,
            admin_token,
            allowed_origins,
            lights,
            light_channels,
            lights_active_low,
            discount_approval_percent,
            timezone,
            log_level,
            log_target,
            sled_cache_mb,
            session_hours,
            connect_timeout_ms,
            request_timeout_ms,
            max_http_connections,
            max_pending_per_address,
            max_connections_per_token,
            staff_reserve_percent,
            login_concurrency,
            public_url,
            metrics_allow,
            book: BookSettings::from(src)?,
            counter: counter::CounterSettings::from(src)?,
            timesync,
            tls,
            nats: nats::site_settings(src)?,
        })
    }

    /// Warnings that do not stop the daemon (printed at start and by `check`).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(tls) = &self.tls {
            out.extend(crate::tls::key_mode_warning(&tls.key));
        }
        out
    }

    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        match &self.timezone {
            Some(name) => {
                jiff::tz::TimeZone::get(name).unwrap_or_else(|_| jiff::tz::TimeZone::system())
            }
            None => jiff::tz::TimeZone::system(),
        }
    }

    /// The rules the core needs from the configuration.
    pub fn rules(&self) -> crate::domain::Rules {
        crate::domain::Rules {
            discount_approval_percent: self.discount_approval_percent,
            light_channels: self.light_channels.keys().copied().collect(),
            session_ttl_ms: (self.session_hours * 3_600_000) as i64,
            tz: self.time_zone(),
            booking_grid_min: self.book.grid_min,
            booking_horizon_days: self.book.horizon_days,
            booking_buffer_min: self.book.buffer_min,
            no_show_grace_min: self.book.no_show_grace_min,
            cancel_cutoff_hours: self.book.cancel_cutoff_hours,
            booking_counts_turn: self.book.counts_turn,
            currency: self.counter.currency.clone(),
            prices_include_tax: self.counter.prices_include_tax,
            ..crate::domain::Rules::default()
        }
    }

    /// `KEY=value` lines of the effective configuration, secrets masked.
    pub fn describe(&self) -> Vec<(String, String)> {
        let channels = self
            .light_channels
            .iter()
            .map(|(ch, p)| format!("{ch}={},{},{}", p.red, p.amber, p.green))
            .collect::<Vec<_>>()
            .join(" ");
        vec![
            ("SPA_LISTEN".into(), self.listen.to_string()),
            ("SPA_DATA_DIR".into(), self.data_dir.display().to_string()),
            (
                "SPA_MAX_CONNECTIONS".into(),
                self.max_connections.to_string(),
            ),
            (
                "SPA_PING_INTERVAL_MS".into(),
                self.ping_interval_ms.to_string(),
            ),
            (
                "SPA_PING_TIMEOUT_MS".into(),
                self.ping_timeout_ms.to_string(),
            ),
            (
                "SPA_MAX_PAYLOAD_BYTES".into(),
                self.max_payload_bytes.to_string(),
            ),
            ("SPA_CLIENT_QUEUE".into(), self.client_queue.to_string()),
            (
                "SPA_ADMIN_TOKEN".into(),
                match &self.admin_token {
                    Some(_) => "******** (set)".into(),
                    None => "(generated, in the data directory)".into(),
                },
            ),
            ("SPA_ALLOWED_ORIGINS".into(), self.allowed_origins.join(",")),
            ("SPA_LIGHTS".into(), self.lights.as_str().into()),
            ("SPA_LIGHT_CHANNELS".into(), channels),
            (
                "SPA_LIGHTS_ACTIVE_LOW".into(),
                self.lights_active_low.to_string(),
            ),
            (
                "SPA_DISCOUNT_APPROVAL_PERCENT".into(),
                self.discount_approval_percent.to_string(),
            ),
            (
                "SPA_TIMEZONE".into(),
                self.timezone.clone().unwrap_or_else(|| {
                    format!(
                        "(system: {})",
                        self.time_zone().iana_name().unwrap_or("unknown")
                    )
                }),
            ),
            ("SPA_LOG".into(), self.log_level.to_string().to_lowercase()),
            (
                "SPA_LOG_TARGET".into(),
                format!("{:?}", self.log_target).to_lowercase(),
            ),
            ("SPA_SLED_CACHE_MB".into(), self.sled_cache_mb.to_string()),
            ("SPA_SESSION_HOURS".into(), self.session_hours.to_string()),
            (
                "SPA_CONNECT_TIMEOUT_MS".into(),
                self.connect_timeout_ms.to_string(),
            ),
            (
                "SPA_REQUEST_TIMEOUT_MS".into(),
                self.request_timeout_ms.to_string(),
            ),
            (
                "SPA_MAX_HTTP_CONNECTIONS".into(),
                self.max_http_connections.to_string(),
            ),
            (
                "SPA_MAX_PENDING_PER_ADDRESS".into(),
                self.max_pending_per_address.to_string(),
            ),
            (
                "SPA_MAX_CONNECTIONS_PER_TOKEN".into(),
                self.max_connections_per_token.to_string(),
            ),
            (
                "SPA_STAFF_RESERVE_PERCENT".into(),
                self.staff_reserve_percent.to_string(),
            ),
            (
                "SPA_LOGIN_CONCURRENCY".into(),
                self.login_concurrency.to_string(),
            ),
            (
                "SPA_PUBLIC_URL".into(),
                self.public_url.clone().unwrap_or_default(),
            ),
            (
                "SPA_TLS_CERT".into(),
                self.tls
                    .as_ref()
                    .map(|t| t.cert.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "SPA_TLS_KEY".into(),
                self.tls
                    .as_ref()
                    .map(|t| t.key.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "SPA_TIMESYNC_FILE".into(),
                self.timesync.file.display().to_string(),
            ),
            (
                "SPA_METRICS_ALLOW".into(),
                self.metrics_allow
                    .iter()
                    .map(|r| match r {
                        AddrRule::All => "all".to_string(),
                        AddrRule::Net(ip, p) => format!("{ip}/{p}"),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
        .into_iter()
        .chain(self.book.describe())
        .chain(self.counter.describe())
        .chain(self.nats.iter().flat_map(|n| {
            [
                ("SPA_SITE_ID".to_string(), n.site.clone()),
                ("SPA_NATS_URL".to_string(), n.server.urls.join(",")),
                (
                    "SPA_NATS_CREDS".to_string(),
                    n.server
                        .creds
                        .as_ref()
                        .map(NatsCreds::describe)
                        .unwrap_or_default(),
                ),
                ("SPA_NATS_PII".to_string(), n.pii.as_str().to_string()),
                (
                    "SPA_NATS_MAX_IN_FLIGHT".to_string(),
                    n.max_in_flight.to_string(),
                ),
            ]
        }))
        .collect()
    }
}

pub mod access;
pub mod counter;
pub mod nats;

#[cfg(test)]
mod tests;
