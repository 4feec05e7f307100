//! The chain's keys: `SPA_SITE_ID`, `SPA_NATS_*` (a site publishing its
//! event log to NATS JetStream) and `SPA_HQ_*` (`spa-hub hq`, head office).
//! Same rules as the rest of the configuration: a bad value is one
//! [`ConfigError`] naming the key; secrets are never echoed back.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{check_data_dir, err, number, ConfigError, Source};
use crate::domain::privacy::Pii;

/// How to prove who we are to NATS (`SPA_NATS_CREDS`).
#[derive(Clone, PartialEq, Eq)]
pub enum NatsCreds {
    /// A `.creds` file (user JWT and NKey seed), read when connecting.
    File(PathBuf),
    UserPassword {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for NatsCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl NatsCreds {
    pub fn describe(&self) -> String {
        match self {
            NatsCreds::File(p) => format!("creds file {}", p.display()),
            NatsCreds::UserPassword { user, .. } => format!("user {user} (password set)"),
        }
    }
}

/// Where NATS is and how to log in: shared by the site and head office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsServer {
    /// One or more `nats://` or `tls://` URLs, comma-separated in the key.
    pub urls: Vec<String>,
    pub creds: Option<NatsCreds>,
    /// Extra CA certificate (PEM) for `tls://` servers with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl NatsServer {
    /// TLS is required when any URL says `tls://`.
    pub fn requires_tls(&self) -> bool {
        self.urls.iter().any(|u| u.starts_with("tls://"))
    }
}

/// A site's publishing settings (`SPA_SITE_ID` + `SPA_NATS_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    pub site: String,
    pub server: NatsServer,
    pub pii: Pii,
    /// Publishes awaiting JetStream's ack at once.
    pub max_in_flight: usize,
    /// The stream's max age in hours when the hub creates it (0: none).
    pub stream_max_age_hours: u64,
}

impl NatsSettings {
    /// The subject this site publishes to.
    pub fn subject(&self) -> String {
        format!("spa.{}.events", self.site)
    }
}

/// The subject tokens a site id may use (no dots, wildcards or spaces).
pub fn valid_site_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn server(src: &Source, raw_url: &str) -> Result<NatsServer, ConfigError> {
    let urls: Vec<String> = raw_url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let ok = |u: &String| {
        let Some((scheme, rest)) = u.split_once("://") else {
            return false;
        };
        matches!(scheme, "nats" | "tls")
            && !rest.is_empty()
            && !rest.contains(['/', ' ', '@'])
            && rest
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_ok())
    };
    if urls.is_empty() || !urls.iter().all(ok) {
        return Err(err(
            "SPA_NATS_URL",
            raw_url,
            "nats://host:port or tls://host:port, several separated by commas (credentials go in SPA_NATS_CREDS)",
        ));
    }
    let creds = match src.get("SPA_NATS_CREDS").map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            let path = PathBuf::from(raw);
            if path.is_file() {
                if let Err(e) = std::fs::File::open(&path) {
                    return Err(err(
                        "SPA_NATS_CREDS",
                        raw,
                        format!("a readable .creds file ({e})"),
                    ));
                }
                Some(NatsCreds::File(path))
            } else if let Some((user, password)) = raw
                .split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty() && !u.contains('/'))
            {
                Some(NatsCreds::UserPassword {
                    user: user.to_string(),
                    password: password.to_string(),
                })
            } else {
                // Never echo what may be a password.
                return Err(err(
                    "SPA_NATS_CREDS",
                    "********",
                    "the path of an existing .creds file, or user:password",
                ));
            }
        }
    };
    let ca_file = match src.get("SPA_NATS_CA").map(str::trim) {
        None | Some("") => None,
        Some(raw) if PathBuf::from(raw).is_file() => Some(PathBuf::from(raw)),
        Some(raw) => {
            return Err(err(
                "SPA_NATS_CA",
                raw,
                "the path of a PEM CA certificate file",
            ))
        }
    };
    Ok(NatsServer {
        urls,
        creds,
        ca_file,
    })
}

/// The site's settings: `None` when neither `SPA_NATS_URL` nor
/// `SPA_SITE_ID` is set (a single box); one without the other is an error.
pub fn site_settings(src: &Source) -> Result<Option<NatsSettings>, ConfigError> {
    let url = src.get("SPA_NATS_URL").map(str::trim).unwrap_or("");
    let site = src.get("SPA_SITE_ID").map(str::trim).unwrap_or("");
    if url.is_empty() && site.is_empty() {
        return Ok(None);
    }
    if url.is_empty() {
        return Err(err(
            "SPA_NATS_URL",
            "",
            "a NATS URL such as nats://hq.example:4222 when SPA_SITE_ID is set",
        ));
    }
    if !valid_site_id(site) {
        return Err(err(
            "SPA_SITE_ID",
            site,
            "1 to 32 of a-z, 0-9, - and _ (it becomes the subject spa.<site>.events)",
        ));
    }
    let pii = match src
        .get("SPA_NATS_PII")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => Pii::Omit,
        Some(v) if v == "omit" || v.is_empty() => Pii::Omit,
        Some(v) if v == "full" => Pii::Full,
        Some(_) => {
            return Err(err(
                "SPA_NATS_PII",
                src.get("SPA_NATS_PII").unwrap_or_default(),
                "omit (no customer name, phone, email or note leaves the box) or full",
            ))
        }
    };
    Ok(Some(NatsSettings {
        site: site.to_string(),
        server: server(src, url)?,
        pii,
        max_in_flight: number(src, "SPA_NATS_MAX_IN_FLIGHT", 256usize, 1, 65_536)?,
        stream_max_age_hours: number(src, "SPA_NATS_MAX_AGE_HOURS", 24 * 30u64, 0, 24 * 3650)?,
    }))
}

/// `spa-hub hq`'s configuration.
#[derive(Debug, Clone)]
pub struct HqConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub token: String,
    pub server: NatsServer,
    /// A site is "live" while its heartbeat is younger than this.
    pub live_after_ms: u64,
    pub log_level: log::LevelFilter,
    pub log_target: crate::logging::LogTarget,
}

impl HqConfig {
    pub fn from_source(src: &Source) -> Result<HqConfig, ConfigError> {
        let listen = super::listen_addr(src, "SPA_HQ_LISTEN", 5100)?;
        let data_dir = check_data_dir(
            "SPA_HQ_DATA_DIR",
            src.get("SPA_HQ_DATA_DIR").unwrap_or("./spa-hq-data"),
        )?;
        let token = match src.get("SPA_HQ_TOKEN").map(str::trim) {
            Some(t) if t.len() >= 16 && t.chars().all(|c| c.is_ascii_graphic()) => t.to_string(),
            other => {
                return Err(err(
                    "SPA_HQ_TOKEN",
                    &"*".repeat(other.map_or(0, |t| t.len().min(8))),
                    "at least 16 printable characters without spaces (head office's pages and API need it)",
                ))
            }
        };
        let url = src.get("SPA_NATS_URL").map(str::trim).unwrap_or("");
        if url.is_empty() {
            return Err(err(
                "SPA_NATS_URL",
                "",
                "the NATS URL head office consumes from, such as nats://127.0.0.1:4222",
            ));
        }
        Ok(HqConfig {
            listen,
            data_dir,
            token,
            server: server(src, url)?,
            live_after_ms: number(src, "SPA_HQ_LIVE_AFTER_S", 60u64, 5, 86_400)? * 1000,
            log_level: match src.get("SPA_LOG") {
                None => log::LevelFilter::Info,
                Some(raw) => raw.trim().parse().map_err(|_| {
                    err(
                        "SPA_LOG",
                        raw,
                        "one of error, warn, info, debug, trace, off",
                    )
                })?,
            },
            log_target: match src.get("SPA_LOG_TARGET") {
                None => crate::logging::LogTarget::Auto,
                Some(raw) => raw
                    .trim()
                    .parse()
                    .map_err(|e: String| err("SPA_LOG_TARGET", raw, e))?,
            },
        })
    }
}

/// The keys of this module for the configuration table (name, default, meaning).
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "SPA_SITE_ID",
        "",
        "this site's id in a chain (a-z, 0-9, -, _); with SPA_NATS_URL the event log goes to NATS",
    ),
    (
        "SPA_NATS_URL",
        "",
        "NATS server(s): nats://host:4222 or tls://host:4222, comma-separated",
    ),
    ("SPA_NATS_CREDS", "", "a .creds file path, or user:password"),
    (
        "SPA_NATS_CA",
        "",
        "extra CA certificate (PEM) for tls:// servers",
    ),
    (
        "SPA_NATS_PII",
        "omit",
        "omit: no customer name, phone, email or note leaves the box; full: they do",
    ),
    (
        "SPA_NATS_MAX_IN_FLIGHT",
        "256",
        "publishes awaiting JetStream's ack at once",
    ),
    (
        "SPA_NATS_MAX_AGE_HOURS",
        "720",
        "max age of the SPA_EVENTS stream when the hub creates it (0: none)",
    ),
    ("SPA_HQ_LISTEN", "0.0.0.0:5100", "spa-hub hq: HTTP address"),
    (
        "SPA_HQ_DATA_DIR",
        "./spa-hq-data",
        "spa-hub hq: every site's events (sled)",
    ),
    (
        "SPA_HQ_TOKEN",
        "",
        "spa-hub hq: the token its pages and API need",
    ),
    (
        "SPA_HQ_LIVE_AFTER_S",
        "60",
        "spa-hub hq: a site is live while its heartbeat is this recent",
    ),
];
