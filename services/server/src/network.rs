//! Who is on the other end of a request, and whether it came over HTTPS.
//!
//! Forwarding headers (`X-Forwarded-For`, `X-Forwarded-Proto`) are written by
//! whoever sends the request, so they are read only when the connection comes
//! from a proxy the operator named in `PILOTGATE_TRUSTED_PROXIES` (addresses or
//! CIDR ranges; none by default). Otherwise the client is the connection's
//! peer and the scheme is what `PILOTGATE_PUBLIC_URL` says.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

/// An address or a CIDR range, e.g. `10.0.0.7` or `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX`.
    pub fn parse(text: &str) -> Result<AddressRange, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("'{address}' is not an IP address"))?;
        let longest = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= longest)
                .ok_or_else(|| format!("'/{prefix}' is not a prefix length of 0 to {longest}"))?,
            None => longest,
        };
        Ok(AddressRange { network, prefix })
    }

    /// Whether `address` lies in this range.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What the operator said about the network in front of the server.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<AddressRange>,
    /// The server is reached by people over HTTPS (`PILOTGATE_PUBLIC_URL` is `https://…`).
    pub public_https: bool,
}

impl Network {
    /// Parses a comma-separated list of addresses and CIDR ranges.
    pub fn parse_proxies(list: &str) -> Result<Vec<AddressRange>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(AddressRange::parse)
            .collect()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|r| r.contains(address))
    }

    /// The client of a request that arrived from `peer`: the peer itself,
    /// unless the peer is a trusted proxy; then the nearest address in
    /// `X-Forwarded-For` (read from the right) that is not a trusted proxy.
    /// An entry that is not an address ends the walk at the last trusted hop.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(canonical)?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>().map(canonical) {
                Ok(address) if self.trusts(address) => client = address,
                Ok(address) => return Some(address),
                Err(_) => break,
            }
        }
        Some(client)
    }

    /// Whether the person's browser reached the server over HTTPS: the public
    /// URL says so, or a trusted proxy says so in `X-Forwarded-Proto`.
    pub fn https(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
        self.public_https
            || peer.map(canonical).is_some_and(|p| self.trusts(p))
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn ranges_hold_their_addresses() {
        let range = AddressRange::parse("10.1.0.0/16").unwrap();
        assert!(range.contains("10.1.200.3".parse().unwrap()));
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            AddressRange::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            AddressRange::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0.1/x"] {
            assert!(AddressRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
        let spoofed = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let untrusting = Network::default();
        assert_eq!(untrusting.client(ip("9.9.9.9"), &spoofed), ip("9.9.9.9"));
        assert!(!untrusting.https(ip("9.9.9.9"), &spoofed));

        let behind_proxy = Network {
            trusted_proxies: Network::parse_proxies("10.0.0.0/8, 127.0.0.1").unwrap(),
            public_https: false,
        };
        assert_eq!(behind_proxy.client(ip("9.9.9.9"), &spoofed), ip("9.9.9.9"));
        assert_eq!(behind_proxy.client(ip("10.0.0.2"), &spoofed), ip("1.2.3.4"));
        assert!(behind_proxy.https(ip("10.0.0.2"), &spoofed));
        assert!(!behind_proxy.https(ip("9.9.9.9"), &spoofed));
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let network = Network {
            trusted_proxies: Network::parse_proxies("10.0.0.0/8").unwrap(),
            public_https: false,
        };
        // A client may put anything on the left; the proxies append on the right.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 5.5.5.5, 10.0.0.9")]);
        assert_eq!(network.client(ip("10.0.0.1"), &chain), ip("5.5.5.5"));
        let garbage = headers(&[("x-forwarded-for", "not-an-address, 10.0.0.9")]);
        assert_eq!(network.client(ip("10.0.0.1"), &garbage), ip("10.0.0.9"));
        assert_eq!(
            network.client(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_public_https_url_makes_every_request_https() {
        let network = Network {
            trusted_proxies: Vec::new(),
            public_https: true,
        };
        assert!(network.https(ip("127.0.0.1"), &HeaderMap::new()));
    }
}
