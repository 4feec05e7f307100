//! `SPA_METRICS_ALLOW`: which client addresses may read `/healthz` and
//! `/metrics`: `all`, or a comma-separated list of addresses, CIDR
//! networks and the words `loopback` (127.0.0.0/8, ::1) and `private`
//! (loopback, 10/8, 172.16/12, 192.168/16, 169.254/16, fc00::/7, fe80::/10).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrRule {
    All,
    Net(IpAddr, u8),
}

fn loopback() -> Vec<AddrRule> {
    vec![
        AddrRule::Net(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
        AddrRule::Net(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    ]
}

fn private() -> Vec<AddrRule> {
    let mut rules = loopback();
    for (a, b, p) in [(10, 0, 8), (172, 16, 12), (192, 168, 16), (169, 254, 16)] {
        rules.push(AddrRule::Net(IpAddr::V4(Ipv4Addr::new(a, b, 0, 0)), p));
    }
    rules.push(AddrRule::Net(
        IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
        7,
    ));
    rules.push(AddrRule::Net(
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        10,
    ));
    rules
}

/// Parses the list; `Err` names the item that is not one.
pub fn parse(raw: &str) -> Result<Vec<AddrRule>, String> {
    let mut rules = Vec::new();
    for item in raw
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match item.to_ascii_lowercase().as_str() {
            "all" => rules.push(AddrRule::All),
            "loopback" => rules.extend(loopback()),
            "private" => rules.extend(private()),
            _ => {
                let (addr, prefix) = match item.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (item, None),
                };
                let addr: IpAddr = addr.parse().map_err(|_| item.to_string())?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= max)
                        .ok_or_else(|| item.to_string())?,
                };
                rules.push(AddrRule::Net(addr, prefix));
            }
        }
    }
    if rules.is_empty() {
        return Err(raw.to_string());
    }
    Ok(rules)
}

/// The default: loopback and the private ranges.
pub fn default_rules() -> Vec<AddrRule> {
    private()
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// Whether `ip` (an IPv4-mapped IPv6 address counts as IPv4) matches.
pub fn allowed(rules: &[AddrRule], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    rules.iter().any(|r| match r {
        AddrRule::All => true,
        AddrRule::Net(net, prefix) => {
            let (a, width) = bits(ip);
            let (n, nwidth) = bits(*net);
            if width != nwidth {
                return false;
            }
            let shift = u32::from(width - (*prefix).min(width));
            if shift >= 128 {
                return true;
            }
            (a >> shift) == (n >> shift)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn words_addresses_and_networks() {
        let private = parse("private").expect("private");
        for yes in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.4.20",
            "::1",
            "fe80::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(allowed(&private, ip(yes)), "{yes}");
        }
        for no in ["8.8.8.8", "172.32.0.1", "2001:db8::1"] {
            assert!(!allowed(&private, ip(no)), "{no}");
        }
        let list = parse("loopback, 192.168.1.0/24 10.0.0.7").expect("list");
        assert!(allowed(&list, ip("192.168.1.99")));
        assert!(!allowed(&list, ip("192.168.2.1")));
        assert!(allowed(&list, ip("10.0.0.7")));
        assert!(!allowed(&list, ip("10.0.0.8")));
        assert!(allowed(&parse("all").expect("all"), ip("8.8.8.8")));
        assert!(allowed(&parse("0.0.0.0/0").expect("any v4"), ip("8.8.8.8")));
        for bad in ["", "nope", "10.0.0.0/33", "::1/129", "1.2.3"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
