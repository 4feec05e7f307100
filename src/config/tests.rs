//! Every key, valid and invalid.

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_source(&Source::from_pairs(pairs.iter().copied()))
}

fn bad(key: &str, value: &str) -> ConfigError {
    match cfg(&[(key, value)]) {
        Ok(_) => panic!("{key}={value:?} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn defaults_work_on_a_developer_machine() {
    let c = cfg(&[]).expect("defaults");
    assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
    assert_eq!(c.data_dir, PathBuf::from("./spa-hub-data"));
    assert_eq!(c.max_connections, 500);
    assert_eq!((c.ping_interval_ms, c.ping_timeout_ms), (25_000, 20_000));
    assert_eq!(c.max_payload_bytes, 65_536);
    assert_eq!(c.client_queue, 256);
    assert_eq!(c.admin_token, None);
    assert!(c.allowed_origins.is_empty());
    assert_eq!(c.lights, BackendKind::Auto);
    assert!(c.light_channels.is_empty());
    assert!(!c.lights_active_low);
    assert_eq!(c.discount_approval_percent, 20);
    assert_eq!(c.timezone, None);
    assert_eq!(c.log_level, LevelFilter::Info);
    assert_eq!(c.log_target, LogTarget::Auto);
    assert_eq!(c.sled_cache_mb, 32);
    assert_eq!(c.request_timeout_ms, 10_000);
    assert_eq!(c.max_http_connections, 256);
    assert_eq!(c.max_pending_per_address, 32);
    assert_eq!(c.max_connections_per_token, 16);
    assert_eq!(c.staff_reserve_percent, 10);
    assert_eq!(c.login_concurrency, 2);
    assert_eq!(c.public_url, None);
    assert_eq!(c.metrics_allow, access::default_rules());
}

#[test]
fn the_security_keys_accept_good_values() {
    let c = cfg(&[
        ("SPA_REQUEST_TIMEOUT_MS", "5000"),
        ("SPA_MAX_HTTP_CONNECTIONS", "64"),
        ("SPA_MAX_PENDING_PER_ADDRESS", "8"),
        ("SPA_MAX_CONNECTIONS_PER_TOKEN", "4"),
        ("SPA_STAFF_RESERVE_PERCENT", "25"),
        ("SPA_LOGIN_CONCURRENCY", "1"),
        ("SPA_PUBLIC_URL", "HTTPS://Spa.Example.org:8443/some/path?x"),
        ("SPA_METRICS_ALLOW", "loopback, 192.168.1.0/24"),
    ])
    .expect("valid");
    assert_eq!(c.request_timeout_ms, 5000);
    assert_eq!(c.max_http_connections, 64);
    assert_eq!(c.max_pending_per_address, 8);
    assert_eq!(c.max_connections_per_token, 4);
    assert_eq!(c.staff_reserve_percent, 25);
    assert_eq!(c.login_concurrency, 1);
    assert_eq!(
        c.public_url.as_deref(),
        Some("https://spa.example.org:8443")
    );
    assert!(access::allowed(
        &c.metrics_allow,
        "192.168.1.7".parse().expect("ip")
    ));
    assert!(!access::allowed(
        &c.metrics_allow,
        "10.0.0.7".parse().expect("ip")
    ));
    let all = cfg(&[("SPA_METRICS_ALLOW", "all")]).expect("all");
    assert!(access::allowed(
        &all.metrics_allow,
        "8.8.8.8".parse().expect("ip")
    ));
    assert!(cfg(&[("SPA_PUBLIC_URL", "")])
        .expect("empty")
        .public_url
        .is_none());
}

#[test]
fn every_key_accepts_a_good_value() {
    let dir = tempfile::tempdir().expect("tmp");
    let dir_s = dir.path().display().to_string();
    let c = cfg(&[
        ("SPA_LISTEN", "127.0.0.1:7000"),
        ("SPA_DATA_DIR", &dir_s),
        ("SPA_MAX_CONNECTIONS", "10000"),
        ("SPA_PING_INTERVAL_MS", "5000"),
        ("SPA_PING_TIMEOUT_MS", "4000"),
        ("SPA_MAX_PAYLOAD_BYTES", "4096"),
        ("SPA_CLIENT_QUEUE", "64"),
        ("SPA_ADMIN_TOKEN", "0123456789abcdef0123"),
        (
            "SPA_ALLOWED_ORIGINS",
            "http://tablet.local:8080, https://desk.example",
        ),
        ("SPA_LIGHTS", "sim"),
        ("SPA_LIGHT_CHANNELS", "1=17,27,22 2=5,6,13"),
        ("SPA_LIGHTS_ACTIVE_LOW", "yes"),
        ("SPA_DISCOUNT_APPROVAL_PERCENT", "35"),
        ("SPA_TIMEZONE", "Asia/Ho_Chi_Minh"),
        ("SPA_LOG", "debug"),
        ("SPA_LOG_TARGET", "stderr"),
        ("SPA_SLED_CACHE_MB", "64"),
        ("SPA_SESSION_HOURS", "8"),
    ])
    .expect("valid");
    assert_eq!(c.listen.port(), 7000);
    assert_eq!(c.data_dir, dir.path());
    assert_eq!(c.max_connections, 10_000);
    assert_eq!(c.ping_interval_ms, 5000);
    assert_eq!(c.ping_timeout_ms, 4000);
    assert_eq!(c.max_payload_bytes, 4096);
    assert_eq!(c.client_queue, 64);
    assert_eq!(c.admin_token.as_deref(), Some("0123456789abcdef0123"));
    assert_eq!(
        c.allowed_origins,
        vec!["http://tablet.local:8080", "https://desk.example"]
    );
    assert_eq!(c.lights, BackendKind::Sim);
    assert_eq!(c.light_channels.len(), 2);
    assert_eq!(
        c.light_channels[&2],
        ChannelPins {
            red: 5,
            amber: 6,
            green: 13
        }
    );
    assert!(c.lights_active_low);
    assert_eq!(c.discount_approval_percent, 35);
    assert_eq!(c.timezone.as_deref(), Some("Asia/Ho_Chi_Minh"));
    assert_eq!(c.log_level, LevelFilter::Debug);
    assert_eq!(c.log_target, LogTarget::Stderr);
    assert_eq!(c.sled_cache_mb, 64);
    assert_eq!(c.session_hours, 8);
    assert_eq!(c.rules().light_channels, vec![1, 2]);
}

#[test]
fn every_key_refuses_a_bad_value_naming_key_value_and_what_is_accepted() {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    let file_s = file.path().display().to_string();
    let cases: &[(&str, &str, &str)] = &[
        ("SPA_LISTEN", "localhost", "address and port"),
        ("SPA_LISTEN", "0.0.0.0:99999", "address and port"),
        ("SPA_DATA_DIR", &file_s, "directory"),
        ("SPA_DATA_DIR", "", "directory"),
        (
            "SPA_MAX_CONNECTIONS",
            "abc",
            "whole number from 1 to 100000",
        ),
        ("SPA_MAX_CONNECTIONS", "0", "whole number from 1"),
        ("SPA_MAX_CONNECTIONS", "-5", "whole number"),
        ("SPA_MAX_CONNECTIONS", "1000000", "100000"),
        ("SPA_PING_INTERVAL_MS", "10", "from 1000"),
        ("SPA_PING_TIMEOUT_MS", "1e3", "whole number"),
        ("SPA_MAX_PAYLOAD_BYTES", "100", "from 1024"),
        ("SPA_CLIENT_QUEUE", "2", "from 8"),
        ("SPA_ADMIN_TOKEN", "short", "at least 16"),
        (
            "SPA_ADMIN_TOKEN",
            "has a space in the middle",
            "at least 16",
        ),
        ("SPA_ALLOWED_ORIGINS", "tablet.local", "origins like"),
        ("SPA_ALLOWED_ORIGINS", "ftp://x", "origins like"),
        ("SPA_LIGHTS", "gpoi", "auto, gpio, gpiochip, sim, off"),
        ("SPA_LIGHT_CHANNELS", "1=17,27", "red"),
        ("SPA_LIGHT_CHANNELS", "1=17,27,22 2=17,6,13", "17"),
        ("SPA_LIGHT_CHANNELS", "1=17,27,40", "27"),
        ("SPA_LIGHTS_ACTIVE_LOW", "maybe", "true or false"),
        ("SPA_DISCOUNT_APPROVAL_PERCENT", "101", "from 0 to 100"),
        ("SPA_TIMEZONE", "Mars/Olympus", "IANA"),
        ("SPA_LOG", "loud", "error, warn, info"),
        ("SPA_LOG_TARGET", "syslog", "auto, journal, stderr"),
        ("SPA_SLED_CACHE_MB", "1", "from 4"),
        ("SPA_SESSION_HOURS", "0", "from 1"),
        ("SPA_REQUEST_TIMEOUT_MS", "50", "from 100"),
        ("SPA_MAX_HTTP_CONNECTIONS", "4", "from 8"),
        ("SPA_MAX_PENDING_PER_ADDRESS", "0", "from 1"),
        ("SPA_MAX_CONNECTIONS_PER_TOKEN", "x", "whole number"),
        ("SPA_STAFF_RESERVE_PERCENT", "95", "from 0 to 90"),
        ("SPA_LOGIN_CONCURRENCY", "0", "from 1 to 64"),
        ("SPA_LOGIN_CONCURRENCY", "1000", "from 1 to 64"),
        ("SPA_PUBLIC_URL", "spa-hub.local:5000", "http or https URL"),
        ("SPA_PUBLIC_URL", "ftp://spa-hub.local", "http or https URL"),
        ("SPA_PUBLIC_URL", "http://user@evil", "http or https URL"),
        ("SPA_METRICS_ALLOW", "everyone", "CIDR"),
        ("SPA_METRICS_ALLOW", "10.0.0.0/40", "CIDR"),
        ("SPA_METRICS_ALLOW", ",", "CIDR"),
    ];
    for (key, value, accepted) in cases {
        let e = bad(key, value);
        assert_eq!(&e.key, key);
        let line = e.to_string();
        assert!(line.starts_with(key), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(
            e.accepted.contains(accepted),
            "{key}={value}: {:?} should mention {accepted:?}",
            e.accepted
        );
        if *key != "SPA_ADMIN_TOKEN" {
            assert!(
                line.contains(&format!("{value:?}")),
                "{line} names the value"
            );
        } else {
            assert!(!line.contains(value), "secrets are masked: {line}");
        }
    }
}

#[test]
fn unreadable_data_dir_is_refused() {
    // Root can read anything; the test is meaningful only for other users.
    if std::env::var("USER").as_deref() == Ok("root") || unsafe_is_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let e = bad("SPA_DATA_DIR", &locked.display().to_string());
        assert!(e.accepted.contains("readable") || e.accepted.contains("writable"));
    }
}

fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn read_only_data_dir_is_refused_even_for_root_when_it_is_a_file_path() {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    let below = file.path().join("sub");
    let e = bad("SPA_DATA_DIR", &below.display().to_string());
    assert!(e.accepted.contains("not a directory"), "{}", e.accepted);
}

#[test]
fn unknown_spa_keys_are_reported() {
    let src = Source::from_pairs([
        ("SPA_LISTEN", "127.0.0.1:1"),
        ("SPA_MAX_CONNECTION", "5"),
        ("PATH", "/bin"),
    ]);
    assert_eq!(src.unknown_keys(), vec!["SPA_MAX_CONNECTION".to_string()]);
}

#[test]
fn env_file_format() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("spa-hub.env");
    std::fs::write(
        &path,
        "# comment\n\nSPA_LISTEN=127.0.0.1:5001\nexport SPA_LOG=\"debug\"\nSPA_TIMEZONE='Europe/Paris'\n  SPA_CLIENT_QUEUE = 64 \n",
    )
    .expect("write");
    let pairs = read_env_file(&path).expect("read");
    assert_eq!(
        pairs,
        vec![
            ("SPA_LISTEN".to_string(), "127.0.0.1:5001".to_string()),
            ("SPA_LOG".to_string(), "debug".to_string()),
            ("SPA_TIMEZONE".to_string(), "Europe/Paris".to_string()),
            ("SPA_CLIENT_QUEUE".to_string(), "64".to_string()),
        ]
    );
    std::fs::write(&path, "SPA_LISTEN\n").expect("write");
    assert!(read_env_file(&path).expect_err("no =").contains("line 1"));
    assert!(read_env_file(&dir.path().join("missing.env")).is_err());
}

#[test]
fn describe_masks_the_admin_token() {
    let c = cfg(&[("SPA_ADMIN_TOKEN", "0123456789abcdef0123")]).expect("valid");
    let text: String = c
        .describe()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    assert!(!text.contains("0123456789abcdef0123"));
    assert!(text.contains("SPA_ADMIN_TOKEN=******** (set)"));
    for (key, _, _) in KEYS {
        if *key != "SPA_GPIOCHIP" {
            assert!(text.contains(key), "describe lists {key}");
        }
    }
}

#[test]
fn every_key_is_in_the_env_file_and_the_readme() {
    let env = include_str!("../../systemd/spa-hub.env");
    let readme = include_str!("../../README.md");
    for (key, _, _) in KEYS {
        assert!(env.contains(&format!("#{key}=")), "{key} in spa-hub.env");
        assert!(readme.contains(&format!("`{key}`")), "{key} in the README");
    }
}

#[test]
fn the_chain_keys() {
    use crate::domain::privacy::Pii;
    // A single box: no NATS.
    assert_eq!(cfg(&[]).expect("valid").nats, None);
    let c = cfg(&[
        ("SPA_SITE_ID", "hanoi-1"),
        (
            "SPA_NATS_URL",
            "tls://hq.example:4222, nats://10.0.0.2:4222",
        ),
        ("SPA_NATS_CREDS", "site:pa:ss"),
    ])
    .expect("valid");
    let n = c.nats.clone().expect("nats");
    assert_eq!(n.subject(), "spa.hanoi-1.events");
    assert!(n.server.requires_tls());
    assert_eq!(n.pii, Pii::Omit);
    assert_eq!(
        n.server.creds,
        Some(NatsCreds::UserPassword {
            user: "site".into(),
            password: "pa:ss".into()
        })
    );
    let text: String = c
        .describe()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    assert!(!text.contains("pa:ss"), "the password is never shown");
    assert!(text.contains("SPA_NATS_PII=omit"));
    for (pairs, key) in [
        (vec![("SPA_SITE_ID", "a")], "SPA_NATS_URL"),
        (vec![("SPA_NATS_URL", "nats://h:4222")], "SPA_SITE_ID"),
        (
            vec![("SPA_NATS_URL", "nats://h:4222"), ("SPA_SITE_ID", "a.b")],
            "SPA_SITE_ID",
        ),
        (
            vec![("SPA_NATS_URL", "nats://h:4222"), ("SPA_SITE_ID", "A")],
            "SPA_SITE_ID",
        ),
        (
            vec![("SPA_NATS_URL", "http://h:4222"), ("SPA_SITE_ID", "a")],
            "SPA_NATS_URL",
        ),
        (
            vec![("SPA_NATS_URL", "nats://u:p@h:4222"), ("SPA_SITE_ID", "a")],
            "SPA_NATS_URL",
        ),
        (
            vec![("SPA_NATS_URL", "nats://h:99999"), ("SPA_SITE_ID", "a")],
            "SPA_NATS_URL",
        ),
        (
            vec![
                ("SPA_NATS_URL", "nats://h"),
                ("SPA_SITE_ID", "a"),
                ("SPA_NATS_PII", "some"),
            ],
            "SPA_NATS_PII",
        ),
        (
            vec![
                ("SPA_NATS_URL", "nats://h"),
                ("SPA_SITE_ID", "a"),
                ("SPA_NATS_CREDS", "/no/such.creds"),
            ],
            "SPA_NATS_CREDS",
        ),
        (
            vec![
                ("SPA_NATS_URL", "nats://h"),
                ("SPA_SITE_ID", "a"),
                ("SPA_NATS_CA", "/no/ca.pem"),
            ],
            "SPA_NATS_CA",
        ),
        (
            vec![
                ("SPA_NATS_URL", "nats://h"),
                ("SPA_SITE_ID", "a"),
                ("SPA_NATS_MAX_IN_FLIGHT", "0"),
            ],
            "SPA_NATS_MAX_IN_FLIGHT",
        ),
    ] {
        let e = cfg(&pairs).expect_err(key);
        assert_eq!(e.key, key, "{pairs:?}");
    }
    let e = cfg(&[
        ("SPA_NATS_URL", "nats://h"),
        ("SPA_SITE_ID", "a"),
        ("SPA_NATS_CREDS", "secretpw"),
    ])
    .expect_err("creds");
    assert!(!e.to_string().contains("secretpw"));
    // Head office.
    let hq =
        |pairs: &[(&str, &str)]| HqConfig::from_source(&Source::from_pairs(pairs.iter().copied()));
    assert_eq!(hq(&[]).expect_err("token").key, "SPA_HQ_TOKEN");
    assert_eq!(
        hq(&[("SPA_HQ_TOKEN", "short")]).expect_err("token").key,
        "SPA_HQ_TOKEN"
    );
    let ok = [
        ("SPA_HQ_TOKEN", "0123456789abcdef0"),
        ("SPA_NATS_URL", "nats://127.0.0.1:4222"),
    ];
    assert_eq!(hq(&ok).expect("valid").listen.port(), 5100);
    assert_eq!(hq(&ok[..1]).expect_err("url").key, "SPA_NATS_URL");
}

#[test]
fn every_chain_key_is_in_the_env_file_and_the_readme() {
    let env = include_str!("../../systemd/spa-hub.env");
    let readme = include_str!("../../README.md");
    for (key, _, _) in crate::config::nats::KEYS {
        assert!(env.contains(&format!("#{key}=")), "{key} in spa-hub.env");
        assert!(readme.contains(&format!("`{key}`")), "{key} in the README");
    }
}
