//! HTTPS on the spa's Wi-Fi (#19): `spa-hub tls init`, HTTPS and plain HTTP
//! on one port (real TLS handshakes trusting the generated CA), the staff
//! pages' redirect, the security headers on every route, and the bad
//! certificate cases (one line, exit 78).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{run_cli, Daemon, ADMIN};

/// `spa-hub tls init --dir DIR` → (cert, key, ca).
fn init(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let d = dir.display().to_string();
    let (code, out, err) = run_cli(&["tls", "init", "--dir", &d, "--name", "spa.test"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SPA_TLS_CERT="), "{out}");
    assert!(
        out.contains("spa.test") && out.contains("127.0.0.1"),
        "{out}"
    );
    (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    )
}

/// A TLS client that trusts only `ca`.
fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(cert.expect("pem")).expect("root");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One request over TLS to 127.0.0.1 (the certificate names it) →
/// (status, raw headers lower-cased, body).
fn https(
    config: &Arc<rustls::ClientConfig>,
    port: u16,
    method: &str,
    path: &str,
) -> (u16, String, String) {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    tls.write_all(req.as_bytes())
        .expect("TLS handshake and write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    split(&String::from_utf8_lossy(&out))
}

/// Plain HTTP → (status, raw headers lower-cased, body).
fn plain(port: u16, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    split(&out)
}

fn split(raw: &str) -> (u16, String, String) {
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn https_and_plain_http_share_the_port_and_every_route_is_hardened() {
    let tmp = tempfile::tempdir().expect("dir");
    let (cert, key, ca) = init(&tmp.path().join("tls"));
    let data = tmp.path().join("data");
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let hub = Daemon::start(&data, &[("SPA_TLS_CERT", &c), ("SPA_TLS_KEY", &k)]);
    let config = client_config(&ca);

    // A real handshake that verifies the chain against the generated CA.
    let (status, head, body) = https(&config, hub.port, "GET", "/admin");
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("<title>Admin</title>"));
    // A client that does not trust the CA gets no page.
    let (other_ca, _, _) = init(&tmp.path().join("other"));
    let stranger = client_config(&other_ca.with_file_name("ca.pem"));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = rustls::ClientConnection::new(stranger, name).expect("client");
    let mut sock = TcpStream::connect(("127.0.0.1", hub.port)).expect("connect");
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    assert!(
        tls.write_all(b"GET / HTTP/1.1\r\n\r\n").is_err(),
        "unknown CA refused"
    );

    // Plain HTTP: staff pages redirect, the login API is refused, the
    // customer pages and the lobby monitor keep working.
    for page in ["/", "/admin", "/cashier", "/therapist"] {
        let (status, head, _) = plain(hub.port, "GET", page);
        assert_eq!(status, 308, "{page}: {head}");
        assert!(
            head.contains(&format!("location: https://127.0.0.1:{}{page}", hub.port)),
            "{head}"
        );
    }
    let (status, _, body) = plain(hub.port, "POST", "/api/login");
    assert_eq!(status, 403, "{body}");
    for page in [
        "/t/sometoken",
        "/b/sometoken",
        "/monitor",
        "/assets/ticket.js",
    ] {
        let (status, head, _) = plain(hub.port, "GET", page);
        assert_eq!(status, 200, "{page}: {head}");
    }

    // The security headers on every route, whatever answers it.
    let routes = [
        ("GET", "/"),
        ("GET", "/monitor"),
        ("GET", "/therapist"),
        ("GET", "/cashier"),
        ("GET", "/admin"),
        ("GET", "/t/abc"),
        ("GET", "/b/abc"),
        ("GET", "/assets/app.css"),
        ("GET", "/assets/common.js"),
        ("GET", "/assets/missing.js"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("POST", "/api/login"),
        ("POST", "/api/logout"),
        ("GET", "/api/reports/day.csv"),
        ("GET", "/socket.io/?EIO=4&transport=polling"),
        ("GET", "/no/such/route"),
    ];
    for (method, path) in routes {
        for (how, (status, head, _)) in [
            ("https", https(&config, hub.port, method, path)),
            ("http", plain(hub.port, method, path)),
        ] {
            assert!(status > 0, "{how} {method} {path}: no answer");
            for want in [
                "x-content-type-options: nosniff",
                "referrer-policy: no-referrer",
                "frame-ancestors 'none'",
                "content-security-policy:",
            ] {
                assert!(
                    head.contains(want),
                    "{how} {method} {path} ({status}) lacks {want}: {head}"
                );
            }
            if head.contains("text/html") {
                // Pages: the hub's own scripts only, never inline.
                assert!(head.contains("script-src 'self'"), "{path}: {head}");
                assert!(!head.contains("unsafe-inline"), "{path}: {head}");
            }
        }
    }
    assert_eq!(hub.stop(), Some(0));
}

/// `spa-hub check` with the given TLS env → (exit code, stderr).
fn check(data: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let d = data.display().to_string();
    let mut all = vec![("SPA_DATA_DIR", d.as_str()), ("SPA_ADMIN_TOKEN", ADMIN)];
    all.extend_from_slice(env);
    let (code, _, err) = run_cli(&["check"], &all);
    (code, err)
}

#[test]
fn a_bad_certificate_or_key_is_one_line_and_exit_78() {
    let tmp = tempfile::tempdir().expect("dir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let (cert, key, _) = init(&tmp.path().join("a"));
    let (_, other_key, _) = init(&tmp.path().join("b"));
    let c = cert.display().to_string();

    // A key that does not belong to the certificate.
    let ok = other_key.display().to_string();
    let (code, err) = check(&data, &[("SPA_TLS_CERT", &c), ("SPA_TLS_KEY", &ok)]);
    assert_eq!(code, 78, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("does not belong"), "{err}");

    // Only one of the two.
    let (code, err) = check(&data, &[("SPA_TLS_CERT", &c)]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("SPA_TLS_KEY"), "{err}");

    // Not a certificate at all.
    let k = key.display().to_string();
    let (code, err) = check(&data, &[("SPA_TLS_CERT", &k), ("SPA_TLS_KEY", &k)]);
    assert_eq!(code, 78, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // An expired certificate (made here, valid 2020–2021).
    let expired_dir = tmp.path().join("expired");
    std::fs::create_dir_all(&expired_dir).expect("dir");
    let kp = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("p");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let old = params.self_signed(&kp).expect("cert");
    let (oc, ok) = (expired_dir.join("cert.pem"), expired_dir.join("key.pem"));
    std::fs::write(&oc, old.pem()).expect("write");
    std::fs::write(&ok, kp.serialize_pem()).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (oc, ok) = (oc.display().to_string(), ok.display().to_string());
    let (code, err) = check(&data, &[("SPA_TLS_CERT", &oc), ("SPA_TLS_KEY", &ok)]);
    assert_eq!(code, 78, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("expired"), "{err}");

    // A key readable by others: a warning, and it still starts.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (code, err) = check(&data, &[("SPA_TLS_CERT", &c), ("SPA_TLS_KEY", &k)]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("readable by others"), "{err}");
    }

    // SPA_PUBLIC_URL that is not an http(s) URL.
    for bad in ["spa.local:5000", "ftp://spa.local", "javascript:alert(1)"] {
        let (code, err) = check(&data, &[("SPA_PUBLIC_URL", bad)]);
        assert_eq!(code, 78, "{bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("SPA_PUBLIC_URL"), "{err}");
    }
}

/// With HTTPS on, a staff credential over a plain WebSocket is refused at
/// CONNECT (it would cross the Wi-Fi in the clear); customers' and
/// monitors' plain routes stay (above).
#[tokio::test]
async fn a_staff_token_over_plain_http_is_refused_when_tls_is_on() {
    let tmp = tempfile::tempdir().expect("dir");
    let (cert, key, _) = init(&tmp.path().join("tls"));
    let data = tmp.path().join("data");
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let hub = Daemon::start(&data, &[("SPA_TLS_CERT", &c), ("SPA_TLS_KEY", &k)]);
    match spa_hub::client::Client::connect(&hub.ws(), ADMIN).await {
        Err(spa_hub::client::ClientError::Refused(why)) => {
            assert!(why.contains("HTTPS"), "{why}")
        }
        Err(e) => panic!("expected a refusal naming HTTPS, got {e}"),
        Ok(_) => panic!("the admin token was accepted over plain HTTP"),
    }
    assert_eq!(hub.stop(), Some(0));
}
