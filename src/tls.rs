//! HTTPS and WSS on the listening port (`SPA_TLS_CERT` / `SPA_TLS_KEY`):
//! rustls with the ring provider (no OpenSSL), the checks a certificate
//! must pass before the daemon starts, `spa-hub tls init` (a local CA and a
//! certificate for the hub's names and addresses, made with rcgen), and the
//! hub's LAN addresses (read from /proc, no netlink socket needed).
//!
//! TLS and plain HTTP share the port: the accept loop peeks at the first
//! byte (a TLS handshake starts with 0x16) and wraps the stream in TLS only
//! then, so customers' phones that do not trust the local CA still open
//! their ticket and booking pages over plain HTTP (see `crate::edge`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate and key files of `SPA_TLS_CERT` / `SPA_TLS_KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads and checks the certificate and key and builds the server's TLS
/// configuration. The error is one sentence for the one-line exit 78.
pub fn server_config(files: &TlsFiles, now_ms: i64) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("cannot read {}: {e}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate: {e}", files.cert.display()))?;
    let Some(leaf) = certs.first() else {
        return Err(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            files.cert.display()
        ));
    };
    check_validity(leaf, now_ms).map_err(|why| format!("{}: {why}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{} is not a PEM private key: {e}", files.key.display()))?;
    // ring, not aws-lc-rs: it cross-builds for the Pi with the plain C
    // cross compiler (no cmake). Deprecated only for lacking post-quantum
    // key exchange, which no tablet on a spa's Wi-Fi needs.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "the key {} does not belong to the certificate {}",
                files.key.display(),
                files.cert.display()
            ),
            e => format!(
                "{} and {} cannot be used: {e}",
                files.cert.display(),
                files.key.display()
            ),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An expired certificate is refused (every browser would refuse it). One
/// not valid yet is accepted: a Pi whose clock is behind must still start.
fn check_validity(cert: &CertificateDer<'_>, now_ms: i64) -> Result<(), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("not a valid X.509 certificate ({e})"))?;
    let not_after = parsed.validity().not_after.timestamp();
    if not_after.saturating_mul(1000) < now_ms {
        return Err(format!(
            "the certificate expired on {} (make a new one: spa-hub tls init)",
            parsed.validity().not_after
        ));
    }
    Ok(())
}

/// A warning when the key file may be read by other users than its owner.
pub fn key_mode_warning(key: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "warning: SPA_TLS_KEY {} is readable by others (mode {mode:04o}): chmod 600 it",
                key.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = key;
        None
    }
}

/// This machine's host name (Linux: /proc), lower case.
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// The machine's own IPv4 addresses other than loopback, from
/// /proc/net/fib_trie (the kernel's local routes): no netlink socket, which
/// the systemd unit does not allow. Sorted, private ones first.
pub fn lan_addresses() -> Vec<IpAddr> {
    let text = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut out = lan_addresses_in(&text);
    let v6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    out.extend(global_v6_in(&v6));
    out
}

/// The local host addresses named in a `/proc/net/fib_trie` text.
pub fn lan_addresses_in(fib_trie: &str) -> Vec<IpAddr> {
    let mut last: Option<std::net::Ipv4Addr> = None;
    let mut out: Vec<std::net::Ipv4Addr> = Vec::new();
    for line in fib_trie.lines() {
        let t = line.trim();
        if let Some(ip) = t.strip_prefix("|-- ") {
            last = ip.trim().parse().ok();
        } else if t.contains("/32 host LOCAL") {
            if let Some(ip) = last {
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out.sort_by_key(|ip| (!ip.is_private(), *ip));
    out.into_iter().map(IpAddr::V4).collect()
}

/// Global IPv6 addresses (scope 00) in a `/proc/net/if_inet6` text.
fn global_v6_in(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 || f[3] != "00" || f[0].len() != 32 {
                return None;
            }
            let bytes: Option<Vec<u8>> = (0..16)
                .map(|i| u8::from_str_radix(&f[0][i * 2..i * 2 + 2], 16).ok())
                .collect();
            let bytes: [u8; 16] = bytes?.try_into().ok()?;
            let ip = std::net::Ipv6Addr::from(bytes);
            (!ip.is_loopback()).then_some(IpAddr::V6(ip))
        })
        .collect()
}

/// What `spa-hub tls init` wrote.
#[derive(Debug)]
pub struct Made {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_reused: bool,
    pub names: Vec<String>,
}

/// Validity of the hub's certificate: 825 days, the most iPadOS and macOS
/// accept for a certificate from a locally installed CA.
const LEAF_DAYS: i64 = 825;
/// The local CA's validity: 10 years (its key never leaves the box).
const CA_DAYS: i64 = 3650;

fn ymd_after(days: i64) -> Result<(i32, u8, u8), String> {
    let ts = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(days * 24))
        .map_err(|e| e.to_string())?;
    let d = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    Ok((
        i32::from(d.year()),
        d.month().unsigned_abs(),
        d.day().unsigned_abs(),
    ))
}

fn write_private(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = f.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `spa-hub tls init`: in `dir`, a local CA (`ca.pem`, `ca-key.pem`; an
/// existing one is kept, so tablets that trust it keep trusting the hub)
/// and a certificate (`cert.pem`, `key.pem`) for `names` (host names) and
/// `addresses`, signed by it.
pub fn init(dir: &Path, names: &[String], addresses: &[IpAddr]) -> Result<Made, String> {
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ca_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let rc = |e: rcgen::Error| format!("certificate: {e}");
    let (issuer, ca_reused) = if ca_path.exists() && ca_key_path.exists() {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(rc)?;
        let issuer = Issuer::from_ca_cert_pem(&read(&ca_path)?, key).map_err(|e| {
            format!(
                "{} cannot sign ({e}); move it and ca-key.pem aside to make a new CA",
                ca_path.display()
            )
        })?;
        (issuer, true)
    } else {
        let key = KeyPair::generate().map_err(rc)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
        let mut dn = DistinguishedName::new();
        let host = hostname().unwrap_or_else(|| "spa-hub".into());
        dn.push(DnType::CommonName, format!("spa-hub local CA ({host})"));
        dn.push(DnType::OrganizationName, "spa-hub");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let (y, m, d) = ymd_after(-1)?;
        params.not_before = date_time_ymd(y, m, d);
        let (y, m, d) = ymd_after(CA_DAYS)?;
        params.not_after = date_time_ymd(y, m, d);
        let cert = params.self_signed(&key).map_err(rc)?;
        write_private(&ca_key_path, &key.serialize_pem(), 0o600)?;
        write_private(&ca_path, &cert.pem(), 0o644)?;
        (Issuer::new(params, key), false)
    };

    let mut sans: Vec<SanType> = Vec::new();
    let mut shown: Vec<String> = Vec::new();
    for name in names {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|_| format!("{name:?} is not a host name"))?;
        sans.push(SanType::DnsName(ia5));
        shown.push(name.clone());
    }
    for ip in addresses {
        sans.push(SanType::IpAddress(*ip));
        shown.push(ip.to_string());
    }
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    params.subject_alt_names = sans;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "spa-hub".into()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let (y, m, d) = ymd_after(-1)?;
    params.not_before = date_time_ymd(y, m, d);
    let (y, m, d) = ymd_after(LEAF_DAYS)?;
    params.not_after = date_time_ymd(y, m, d);
    let cert = params.signed_by(&key, &issuer).map_err(rc)?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    write_private(&key_path, &key.serialize_pem(), 0o600)?;
    write_private(&cert_path, &cert.pem(), 0o644)?;
    Ok(Made {
        ca: ca_path,
        cert: cert_path,
        key: key_path,
        ca_reused,
        names: shown,
    })
}

/// The SHA-256 fingerprint of a PEM certificate's first certificate, as
/// phones and browsers show it (`AB:CD:…`).
pub fn fingerprint(pem: &Path) -> Option<String> {
    use sha2::Digest;
    let der = CertificateDer::pem_file_iter(pem).ok()?.next()?.ok()?;
    let digest = sha2::Sha256::digest(der.as_ref());
    Some(
        digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// The names and addresses `tls init` puts in the certificate by default:
/// the host name, its `.local` name, `localhost`, the LAN addresses and
/// the loopback ones.
pub fn default_names() -> (Vec<String>, Vec<IpAddr>) {
    let mut names = Vec::new();
    if let Some(h) = hostname() {
        names.push(format!("{h}.local"));
        names.push(h);
    }
    names.push("localhost".into());
    let mut ips = lan_addresses();
    ips.push(IpAddr::from([127, 0, 0, 1]));
    ips.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    (names, ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_addresses_come_from_the_local_routes() {
        let fib = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n        +-- 127.0.0.0/31 1 0 0\n           |-- 127.0.0.0\n              /8 host LOCAL\n           |-- 127.0.0.1\n              /32 host LOCAL\n     +-- 192.168.1.0/24 2 0 2\n        |-- 192.168.1.0\n           /24 link UNICAST\n        |-- 192.168.1.20\n           /32 host LOCAL\n        |-- 192.168.1.255\n           /32 link BROADCAST\nLocal:\n        |-- 192.168.1.20\n           /32 host LOCAL\n";
        assert_eq!(lan_addresses_in(fib), vec![IpAddr::from([192, 168, 1, 20])]);
    }

    #[test]
    fn init_makes_a_ca_and_a_certificate_that_load_and_match() {
        let dir = tempfile::tempdir().expect("dir");
        let names = vec!["spa.local".to_string(), "localhost".to_string()];
        let ips = vec![IpAddr::from([127, 0, 0, 1])];
        let made = init(dir.path(), &names, &ips).expect("init");
        assert!(!made.ca_reused);
        let files = TlsFiles {
            cert: made.cert.clone(),
            key: made.key.clone(),
        };
        let now = jiff::Timestamp::now().as_millisecond();
        server_config(&files, now).expect("loads");
        assert!(key_mode_warning(&made.key).is_none(), "key is 0600");
        // A second init keeps the CA (tablets keep trusting it).
        let ca = std::fs::read(&made.ca).expect("ca");
        let again = init(dir.path(), &names, &ips).expect("again");
        assert!(again.ca_reused);
        assert_eq!(std::fs::read(&again.ca).expect("ca"), ca);
        // The old key with the new certificate: refused, named.
        let other = tempfile::tempdir().expect("dir");
        let third = init(other.path(), &names, &ips).expect("third");
        let mismatched = TlsFiles {
            cert: again.cert.clone(),
            key: third.key.clone(),
        };
        let err = server_config(&mismatched, now).expect_err("mismatch");
        assert!(err.contains("does not belong"), "{err}");
        // Three years on (past 825 days), it has expired.
        let later = now + 3 * 365 * 86_400_000;
        let err = server_config(&files, later).expect_err("expired");
        assert!(err.contains("expired"), "{err}");
        // A key readable by others: a warning.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&made.key, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            assert!(key_mode_warning(&made.key).is_some());
        }
    }
}
