//! The client's address behind reverse proxies. Lockout counts failed authentications per
//! address; behind a proxy every request comes from the proxy's address, so one attacker
//! would lock every client out (or be hidden among them). Proxies the operator names
//! (`--trusted-proxy`) are believed about who they forwarded for: the client is the last
//! address in `X-Forwarded-For` that is not itself a trusted proxy. Anyone else's
//! `X-Forwarded-For` is ignored: a client cannot choose its own address.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// Addresses and networks (CIDR) of trusted reverse proxies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

/// Maps an IPv4-mapped IPv6 address to its IPv4 form, so both spellings compare equal.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// Parses `10.0.0.7`, `10.0.0.0/8`, `fd00::/8`, …; the error names the entry.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "--trusted-proxy {entry:?} is not an IP address or network (e.g. 10.0.0.7 or 10.0.0.0/8)"
                )
            };
            let (addr, len) = match entry.split_once('/') {
                Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
                None => (entry, None),
            };
            let ip = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = len.unwrap_or(max);
            if len > max {
                return Err(bad());
            }
            out.push((ip, len));
        }
        Ok(Self(out))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|&(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), len),
            _ => false,
        })
    }

    /// The client's address for a request from `peer` with `headers`: `peer` itself unless
    /// it is a trusted proxy; then, walking `X-Forwarded-For` from its end, the first address
    /// that is not a trusted proxy (the last proxy's address when the header names no other,
    /// or does not parse).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = canonical(ip);
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    let rest = len % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "fd00::1".into(), " ".into()]).unwrap();
        assert!(proxies.contains(ip("10.1.2.3")) && proxies.contains(ip("::ffff:10.0.0.1")));
        assert!(!proxies.contains(ip("11.0.0.1")) && !proxies.contains(ip("fd00::2")));
        // Through the proxy: the last untrusted hop.
        let h = headers(&["203.0.113.9, 10.0.0.5"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // A client's own X-Forwarded-For before the proxy's is not believed past the first
        // untrusted hop.
        let h = headers(&["1.2.3.4", "198.51.100.7"]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Straight from a client: its header is ignored.
        assert_eq!(proxies.client(ip("198.51.100.7"), &h), ip("198.51.100.7"));
        // No header, or garbage: the proxy's own address.
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &headers(&["not-an-ip"])),
            ip("10.0.0.1")
        );
        // No proxies configured: always the peer.
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &headers(&["1.2.3.4"])),
            ip("10.0.0.1")
        );
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(
                TrustedProxies::parse(&[bad.into()])
                    .unwrap_err()
                    .contains(bad)
            );
        }
    }
}
