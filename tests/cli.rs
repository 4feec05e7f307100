//! The command line: exit 78 with one line for every bad value, unknown keys
//! warned about, `check`, `--version`, `--help`, `lights test`.

mod common;

use common::run_cli;

#[test]
fn a_bad_value_stops_serve_with_78_and_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().to_str().expect("utf8");
    for (key, value) in [
        ("SPA_MAX_CONNECTIONS", "lots"),
        ("SPA_LISTEN", "nowhere"),
        ("SPA_LIGHTS", "neon"),
        ("SPA_LIGHT_CHANNELS", "1=17,27,22 2=17,5,6"),
        ("SPA_LIGHT_CHANNELS", "1=17,27"),
        ("SPA_PING_TIMEOUT_MS", "-1"),
    ] {
        let (code, out, err) = run_cli(&["serve"], &[("SPA_DATA_DIR", data), (key, value)]);
        assert_eq!(code, 78, "{key}={value}: {out}{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(lines[0].contains(key) && lines[0].contains(value), "{err}");
        assert!(lines[0].contains("expected"), "{err}");
    }
    // A missing env file named on the command line is an error too.
    let (code, _, err) = run_cli(&["serve", "--env-file", "/nonexistent/spa-hub.env"], &[]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("/nonexistent/spa-hub.env"));
}

#[test]
fn env_file_values_and_unknown_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = dir.path().join("spa-hub.env");
    let data = dir.path().join("data");
    std::fs::write(
        &env,
        format!("# spa\nSPA_DATA_DIR={}\nSPA_MAX_CONECTIONS=300\nSPA_LIGHTS=sim\nSPA_LIGHT_CHANNELS=1=17,27,22\n", data.display()),
    )
    .expect("write");
    let (code, out, err) = run_cli(&["check", "--env-file", env.to_str().expect("utf8")], &[]);
    assert!(
        err.contains("unknown key SPA_MAX_CONECTIONS"),
        "a typo is warned about: {err}"
    );
    assert!(out.contains("SPA_LIGHTS=sim"), "{out}");
    assert!(
        out.contains("channel 1: red BCM 17, amber BCM 27, green BCM 22"),
        "{out}"
    );
    assert!(out.contains("schema version"), "{out}");
    assert!(out.contains("open files"), "{out}");
    assert!(out.contains("SPA_ADMIN_TOKEN="), "{out}");
    assert_eq!(code, 0, "{out}{err}");
    // The environment wins over the file.
    let (_, out, _) = run_cli(
        &["check", "--env-file", env.to_str().expect("utf8")],
        &[("SPA_LIGHTS", "off")],
    );
    assert!(out.contains("SPA_LIGHTS=off"), "{out}");
}

#[test]
fn check_fails_when_the_open_file_limit_is_below_the_budget() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().to_str().expect("utf8");
    let (code, out, _) = run_cli(
        &["check"],
        &[("SPA_DATA_DIR", data), ("SPA_MAX_CONNECTIONS", "100000")],
    );
    let limit = spa_hub::daemon::open_file_limit().unwrap_or(u64::MAX);
    if limit < 100_064 {
        assert_ne!(code, 0, "{out}");
        assert!(
            out.contains("PROBLEM") && out.contains("LimitNOFILE"),
            "{out}"
        );
    }
}

#[test]
fn version_and_help() {
    let (code, out, _) = run_cli(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
    for sub in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["backup", "--help"],
        &["restore", "--help"],
        &["lights", "test", "--help"],
        &["bench", "--help"],
    ] {
        let (code, out, err) = run_cli(sub, &[]);
        assert_eq!(code, 0, "{sub:?}: {err}");
        assert!(out.contains("Usage"), "{sub:?}: {out}");
    }
}

#[test]
fn lights_test_walks_every_channel() {
    let (code, out, err) = run_cli(
        &["lights", "test", "--step-ms", "1"],
        &[
            ("SPA_LIGHTS", "sim"),
            ("SPA_LIGHT_CHANNELS", "1=17,27,22 2=5,6,13"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    for needle in ["1", "2", "red", "amber", "green"] {
        assert!(out.to_lowercase().contains(needle), "{needle}: {out}");
    }
    let (code, _, err) = run_cli(&["lights", "test"], &[("SPA_LIGHTS", "sim")]);
    assert_eq!(code, 78, "no channels: {err}");
}
