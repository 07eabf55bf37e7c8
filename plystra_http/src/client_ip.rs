//! The client's IP address as recorded on audit rows and access logs. Forwarding headers are believed only when
//! the TCP peer is one of TRUSTED_PROXIES: anyone can write `X-Forwarded-For`, so trusting it from an
//! arbitrary peer would let a caller forge the address in the audit trail.

use std::net::IpAddr;

use axum::http::HeaderMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// A comma-separated list of addresses or CIDR blocks (`10.0.0.1`, `10.0.0.0/8`, `::1`).
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, prefix) = match item.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| format!("{item:?} is not an IP address or CIDR block"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(format!("{item:?} has an invalid prefix length")),
                },
            };
            nets.push((addr, prefix));
        }
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|&(net, prefix)| match (canonical(net), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n) as u128, prefix, 32) == masked(u32::from(a) as u128, prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => masked(u128::from(n), prefix, 128) == masked(u128::from(a), prefix, 128),
            _ => false,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client a per-client bound is kept for (login slots and failed-login budgets, bodies being read): an IPv4
/// address, or an IPv6 address's /64. One host is given a /64, and counting each of its addresses apart would give
/// it 2^64 budgets.
pub fn network(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn masked(value: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let shift = (width - prefix) as u32;
    (value >> shift) << shift
}

/// The client address: the peer itself, unless the peer is a trusted proxy, in which case the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (the last hop we can vouch for), or `X-Real-IP`.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    if let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        let hops: Vec<IpAddr> = xff.split(',').filter_map(|h| h.trim().parse::<IpAddr>().ok()).map(canonical).collect();
        if let Some(client) = hops.iter().rev().find(|ip| !trusted.contains(**ip)) {
            return Some(*client);
        }
        if let Some(first) = hops.first() {
            return Some(*first);
        }
    }
    if let Some(real) = headers.get("x-real-ip").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()) {
        return Some(canonical(real));
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let got = resolve(Some("192.0.2.7".parse().unwrap()), &headers("203.0.113.9"), &trusted);
        assert_eq!(got, Some("192.0.2.7".parse().unwrap()));
        let none = TrustedProxies::default();
        let got = resolve(Some("10.1.1.1".parse().unwrap()), &headers("203.0.113.9"), &none);
        assert_eq!(got, Some("10.1.1.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_for_is_honoured_from_trusted_peers() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let got = resolve(Some("10.1.1.1".parse().unwrap()), &headers("203.0.113.9, 10.2.2.2"), &trusted);
        assert_eq!(got, Some("203.0.113.9".parse().unwrap()));
        let got = resolve(Some("127.0.0.1".parse().unwrap()), &headers("198.51.100.1"), &trusted);
        assert_eq!(got, Some("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn cidr_matching() {
        let t = TrustedProxies::parse("192.168.0.0/16,::1,2001:db8::/32").unwrap();
        assert!(t.contains("192.168.4.5".parse().unwrap()));
        assert!(!t.contains("192.169.0.1".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!(t.contains("2001:db8::5".parse().unwrap()));
        assert!(t.contains("::ffff:192.168.1.1".parse().unwrap()));
        assert!(TrustedProxies::parse("1.2.3.4/33").is_err());
        assert!(TrustedProxies::parse("nope").is_err());
    }
}
