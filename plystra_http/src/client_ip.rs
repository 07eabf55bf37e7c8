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

/// The header a trusted proxy writes the client's address in (TRUSTED_PROXY_HEADER). Only that one is read: a
/// proxy that sets `X-Real-IP` and passes the client's own `X-Forwarded-For` through would otherwise let the client
/// name any address (an attack on the running front held 40 body shares from one client so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `X-Forwarded-For`, each proxy appending the address it received the request from.
    #[default]
    ForwardedFor,
    /// `X-Real-IP`, set (not appended) by the one trusted proxy in front of the server.
    RealIp,
}

impl ProxyHeader {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "x-forwarded-for" => Ok(ProxyHeader::ForwardedFor),
            "x-real-ip" => Ok(ProxyHeader::RealIp),
            other => Err(format!("{other:?} is neither x-forwarded-for nor x-real-ip")),
        }
    }
}

/// The client address: the peer itself, unless the peer is a trusted proxy. Then, with `X-Forwarded-For`, its
/// entries are read from the right (every line of the header, in order, as one list): each was appended by the
/// hop to its right, so the first that is not a trusted proxy is the client, the last hop we can vouch for. An
/// entry that is not an address (`ip:port` and `[ipv6]:port` are, as some proxies write them) ends the walk at the
/// hop that appended it: what lies to its left was written by someone we cannot vouch for. With `X-Real-IP`, the
/// last line of that header (a proxy sets it after any the client sent), else the peer.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
    header: ProxyHeader,
) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    match header {
        ProxyHeader::RealIp => {
            let last = headers.get_all("x-real-ip").iter().next_back();
            Some(last.and_then(|v| v.to_str().ok()).and_then(hop).unwrap_or(peer))
        }
        ProxyHeader::ForwardedFor => {
            let mut vouched = peer;
            for line in headers.get_all("x-forwarded-for").iter().rev() {
                let Ok(line) = line.to_str() else { return Some(vouched) };
                for entry in line.rsplit(',') {
                    let Some(ip) = hop(entry) else { return Some(vouched) };
                    if !trusted.contains(ip) {
                        return Some(ip);
                    }
                    vouched = ip;
                }
            }
            Some(vouched)
        }
    }
}

/// One forwarding entry's address: `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port`.
fn hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip =
        entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())).or_else(
            || entry.strip_prefix('[')?.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        )?;
    Some(canonical(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
        super::resolve(peer, headers, trusted, ProxyHeader::ForwardedFor)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_entry_a_proxy_appends_with_its_port_is_the_client() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let peer = ip("127.0.0.1");
        // The client wrote the first entry; the proxy appended what it received the request from.
        assert_eq!(resolve(peer, &headers("198.51.100.66, 203.0.113.5:4431"), &trusted), ip("203.0.113.5"));
        assert_eq!(resolve(peer, &headers("198.51.100.66, [2001:db8::5]:443"), &trusted), ip("2001:db8::5"));
        assert_eq!(resolve(peer, &headers("198.51.100.66,[2001:db8::6]"), &trusted), ip("2001:db8::6"));
        assert_eq!(resolve(peer, &headers("::ffff:203.0.113.7"), &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn an_entry_that_is_no_address_ends_the_walk_at_the_hop_that_wrote_it() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let peer = ip("127.0.0.1");
        for xff in ["198.51.100.66, unknown", "198.51.100.66, ", "198.51.100.66,,", "198.51.100.66, 1.2.3.4.5"] {
            assert_eq!(resolve(peer, &headers(xff), &trusted), peer, "{xff:?}");
        }
        // Past a trusted hop, the walk ends at that hop.
        assert_eq!(resolve(peer, &headers("198.51.100.66, junk, 10.1.2.3"), &trusted), ip("10.1.2.3"));
    }

    #[test]
    fn every_forwarded_for_line_is_read_the_last_first() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "198.51.100.66".parse().unwrap());
        h.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let peer = ip("127.0.0.1");
        let mut h = headers("198.51.100.66");
        h.append("x-real-ip", "198.51.100.67".parse().unwrap());
        h.append("x-real-ip", "203.0.113.8".parse().unwrap());
        assert_eq!(super::resolve(peer, &h, &trusted, ProxyHeader::RealIp), ip("203.0.113.8"));
        assert_eq!(super::resolve(peer, &h, &trusted, ProxyHeader::ForwardedFor), ip("198.51.100.66"));
        let mut only_real = HeaderMap::new();
        only_real.insert("x-real-ip", "203.0.113.8".parse().unwrap());
        assert_eq!(super::resolve(peer, &only_real, &trusted, ProxyHeader::ForwardedFor), peer);
        assert_eq!(super::resolve(peer, &headers("203.0.113.8"), &trusted, ProxyHeader::RealIp), peer);
        assert!(ProxyHeader::parse("forwarded").is_err());
        assert_eq!(ProxyHeader::parse("X-Real-IP"), Ok(ProxyHeader::RealIp));
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
