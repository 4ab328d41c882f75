//! The egress policy: which addresses serin's calls on behalf of Canaries, MetricTemplates and
//! AlertProviders may reach. Whoever may write those objects chooses the URLs, and serin calls
//! them from inside the cluster with its own network position: without a policy a tenant can
//! make serin fetch the cloud's instance metadata (169.254.169.254, which hands out node
//! credentials), probe services on the controller's own loopback, or talk to the API server.
//!
//! The policy is applied where the address is final: a DNS resolver ([`Resolver`]) that drops
//! refused addresses from every lookup the HTTP client makes, so a name that resolves to an
//! allowed address at check time and a refused one at connect time (DNS rebinding) is still
//! refused; and [`Policy::check_url`] for URLs whose host is an IP address, which the client
//! connects to without a lookup. With a proxy, the proxy's address is what is checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// `--egress-policy`: what the calls made for Canaries, templates and alert providers may reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No check (the default, so an upgrade changes nothing).
    #[default]
    AllowAll,
    /// Refuse link-local (cloud metadata), loopback, unspecified and the API server's address.
    DenyInternal,
    /// `deny-internal`, plus the private ranges (10/8, 172.16/12, 192.168/16, 100.64/10,
    /// fc00::/7): only public servers and `--egress-allow` ranges are reached.
    DenyPrivate,
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("egress policy refuses {address} ({why})")]
pub struct Refusal {
    pub address: IpAddr,
    pub why: &'static str,
}

/// The policy: a mode, ranges always allowed, and the API server's addresses.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub mode: Mode,
    /// `--egress-allow`: ranges reached whatever the mode says (an in-cluster Prometheus, say),
    /// the API server's addresses excepted.
    pub allow: Vec<IpNet>,
    /// Where the controller's Kubernetes client connects: the address its configuration names
    /// (in a cluster, the `kubernetes` Service's), not the API server's own endpoints behind
    /// a Service.
    pub api_server: Vec<IpAddr>,
}

impl Policy {
    pub fn is_enforced(&self) -> bool {
        self.mode != Mode::AllowAll
    }

    /// What an operator should know at start-up about this policy, if anything: an enforcing
    /// policy that knows no API server address (its name did not resolve) leaves the API
    /// server reachable unless another rule refuses it.
    pub fn warning(&self, api_host: &str) -> Option<String> {
        (self.is_enforced() && self.api_server.is_empty()).then(|| {
            format!(
                "the API server's address {api_host:?} did not resolve: the egress policy \
                 refuses it only where another rule does (deny-private for a private address)"
            )
        })
    }

    /// Whether `address` may be reached, and if not why.
    pub fn verdict(&self, address: IpAddr) -> Result<(), Refusal> {
        let address = embedded_ipv4(address);
        if !self.is_enforced() {
            return Ok(());
        }
        let refuse = |why| Err(Refusal { address, why });
        // Before the allowed ranges: allowing the Services' range must not open the API
        // server's Service address with it.
        if self.api_server.iter().any(|a| a.to_canonical() == address) {
            return refuse("the Kubernetes API server");
        }
        if self.allow.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        if let Some(why) = internal(address) {
            return refuse(why);
        }
        if self.mode == Mode::DenyPrivate
            && let Some(why) = private(address)
        {
            return refuse(why);
        }
        Ok(())
    }

    /// Checks a URL whose host is an IP address (names are checked when resolved). A URL that
    /// does not parse is left to the HTTP client, which reports it.
    pub fn check_url(&self, url: &str) -> Result<(), Refusal> {
        let Ok(url) = reqwest::Url::parse(url) else {
            return Ok(());
        };
        // IPv6 hosts keep their brackets in a URL.
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.parse::<IpAddr>().map_or(Ok(()), |ip| self.verdict(ip))
    }

    /// serin's client settings with this policy's resolver.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder = super::client_builder();
        if !self.is_enforced() {
            return builder;
        }
        builder.dns_resolver(Arc::new(Resolver {
            policy: Arc::new(self.clone()),
        }))
    }
}

/// The addresses of `host` (an IP address or a name); none when it does not resolve.
pub async fn addresses(host: &str, port: u16) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(found) => found.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The IPv4 address an IPv6 address stands for, when it does: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-translated (`::ffff:0:a.b.c.d`, RFC 2765) and the well-known NAT64 prefix
/// (`64:ff9b::a.b.c.d`, RFC 6052), which a gateway forwards to the IPv4 address. The local-use
/// NAT64 prefix (`64:ff9b:1::/48`, RFC 8215) is not unwrapped: where its IPv4 address sits
/// depends on the prefix length the network chose, so [`internal`] refuses the whole range.
fn embedded_ipv4(address: IpAddr) -> IpAddr {
    let IpAddr::V6(ip) = address else {
        return address;
    };
    let [.., a, b, c, d] = ip.octets();
    match ip.segments() {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => {
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
        _ => address.to_canonical(),
    }
}

/// In the local-use NAT64 prefix `64:ff9b:1::/48`.
fn local_nat64(ip: Ipv6Addr) -> bool {
    ip.segments()[..3] == [0x64, 0xff9b, 1]
}

fn internal(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(ip) if ip.is_link_local() => Some("link-local"),
        IpAddr::V6(ip) if ip.is_unicast_link_local() => Some("link-local"),
        ip if ip.is_loopback() => Some("loopback"),
        ip if ip.is_unspecified() => Some("unspecified"),
        ip if ip.is_multicast() => Some("multicast"),
        IpAddr::V4(ip) if ip == Ipv4Addr::BROADCAST => Some("broadcast"),
        IpAddr::V6(ip) if local_nat64(ip) => Some("local-use NAT64, any IPv4 address behind it"),
        _ => None,
    }
}

fn private(address: IpAddr) -> Option<&'static str> {
    let shared = |ip: Ipv4Addr| ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64;
    let unique_local = |ip: Ipv6Addr| (ip.segments()[0] & 0xfe00) == 0xfc00;
    match address {
        IpAddr::V4(ip) if ip.is_private() => Some("private"),
        IpAddr::V4(ip) if shared(ip) => Some("shared address space"),
        IpAddr::V6(ip) if unique_local(ip) => Some("private"),
        _ => None,
    }
}

/// Resolves names with the system resolver and keeps only the addresses the policy allows; a
/// name left with none fails with the first refusal, which ends up in the call's error.
struct Resolver {
    policy: Arc<Policy>,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused) = sift(&policy, found);
            match (allowed.is_empty(), refused) {
                (true, Some(refusal)) => Err(Box::new(refusal) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// The allowed addresses, and the first refusal if any.
fn sift(policy: &Policy, found: Vec<SocketAddr>) -> (Vec<SocketAddr>, Option<Refusal>) {
    let mut refused = None;
    let allowed = found
        .into_iter()
        .filter(|a| match policy.verdict(a.ip()) {
            Ok(()) => true,
            Err(refusal) => {
                refused.get_or_insert(refusal);
                false
            }
        })
        .collect();
    (allowed, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: Mode) -> Policy {
        Policy {
            mode,
            allow: vec!["10.96.100.0/24".parse().unwrap()],
            api_server: vec!["10.96.0.1".parse().unwrap()],
        }
    }

    fn refusal(policy: &Policy, address: &str) -> String {
        policy
            .verdict(address.parse().unwrap())
            .map_or_else(|r| r.to_string(), |()| "allowed".into())
    }

    #[test]
    fn deny_internal_refuses_metadata_loopback_and_the_api_server() {
        let p = policy(Mode::DenyInternal);
        assert_eq!(
            refusal(&p, "169.254.169.254"),
            "egress policy refuses 169.254.169.254 (link-local)"
        );
        assert_eq!(
            refusal(&p, "fe80::1"),
            "egress policy refuses fe80::1 (link-local)"
        );
        assert_eq!(
            refusal(&p, "127.0.0.1"),
            "egress policy refuses 127.0.0.1 (loopback)"
        );
        assert_eq!(refusal(&p, "::1"), "egress policy refuses ::1 (loopback)");
        assert_eq!(
            refusal(&p, "::ffff:169.254.169.254"),
            "egress policy refuses 169.254.169.254 (link-local)",
            "an IPv4-mapped address is the IPv4 address"
        );
        assert_eq!(
            refusal(&p, "64:ff9b::a9fe:a9fe"),
            "egress policy refuses 169.254.169.254 (link-local)",
            "so is a NAT64 one"
        );
        assert_eq!(
            refusal(&p, "::ffff:0:a9fe:a9fe"),
            "egress policy refuses 169.254.169.254 (link-local)",
            "so is an IPv4-translated one (RFC 2765)"
        );
        assert_eq!(
            refusal(&p, "::ffff:0:a60:1"),
            "egress policy refuses 10.96.0.1 (the Kubernetes API server)"
        );
        assert_eq!(
            refusal(&p, "64:ff9b:1::a9fe:a9fe"),
            "egress policy refuses 64:ff9b:1::a9fe:a9fe (local-use NAT64, any IPv4 address behind it)",
            "where the local-use NAT64 prefix carries the IPv4 address depends on the network"
        );
        assert_eq!(
            refusal(&p, "64:ff9b:1:a9fe:a9:fe00::"),
            "egress policy refuses 64:ff9b:1:a9fe:a9:fe00:: (local-use NAT64, any IPv4 address behind it)",
            "a /48 prefix carries 169.254.169.254 here"
        );
        assert_eq!(
            refusal(&p, "10.96.0.1"),
            "egress policy refuses 10.96.0.1 (the Kubernetes API server)"
        );
        assert_eq!(refusal(&p, "10.1.2.3"), "allowed", "in-cluster services");
        assert_eq!(refusal(&p, "93.184.215.14"), "allowed");
    }

    #[test]
    fn deny_private_refuses_private_ranges_except_the_allowed_ones() {
        let p = policy(Mode::DenyPrivate);
        assert_eq!(
            refusal(&p, "10.1.2.3"),
            "egress policy refuses 10.1.2.3 (private)"
        );
        assert_eq!(
            refusal(&p, "::ffff:0:a9fe:a9fe"),
            "egress policy refuses 169.254.169.254 (link-local)",
            "so is an IPv4-translated one (RFC 2765)"
        );
        assert_eq!(
            refusal(&p, "::ffff:0:a60:1"),
            "egress policy refuses 10.96.0.1 (the Kubernetes API server)"
        );
        assert_eq!(
            refusal(&p, "64:ff9b:1::a9fe:a9fe"),
            "egress policy refuses 64:ff9b:1::a9fe:a9fe (local-use NAT64, any IPv4 address behind it)",
            "where the local-use NAT64 prefix carries the IPv4 address depends on the network"
        );
        assert_eq!(
            refusal(&p, "64:ff9b:1:a9fe:a9:fe00::"),
            "egress policy refuses 64:ff9b:1:a9fe:a9:fe00:: (local-use NAT64, any IPv4 address behind it)",
            "a /48 prefix carries 169.254.169.254 here"
        );
        assert_eq!(
            refusal(&p, "192.168.1.1"),
            "egress policy refuses 192.168.1.1 (private)"
        );
        assert_eq!(
            refusal(&p, "fd00::5"),
            "egress policy refuses fd00::5 (private)"
        );
        assert_eq!(
            refusal(&p, "100.64.0.9"),
            "egress policy refuses 100.64.0.9 (shared address space)"
        );
        assert_eq!(
            refusal(&p, "::ffff:0:a01:203"),
            "egress policy refuses 10.1.2.3 (private)"
        );
        assert_eq!(
            refusal(&p, "::ffff:0:5db8:d70e"),
            "allowed",
            "a public IPv4"
        );
        assert_eq!(refusal(&p, "10.96.100.7"), "allowed", "--egress-allow");
        let services = Policy {
            allow: vec!["10.96.0.0/12".parse().unwrap()],
            ..policy(Mode::DenyPrivate)
        };
        assert_eq!(
            refusal(&services, "10.96.0.1"),
            "egress policy refuses 10.96.0.1 (the Kubernetes API server)",
            "allowing the Services' range does not open the API server"
        );
        assert_eq!(refusal(&p, "93.184.215.14"), "allowed");
    }

    #[test]
    fn allow_all_checks_nothing_and_urls_with_literal_addresses_are_checked() {
        assert_eq!(
            refusal(&policy(Mode::AllowAll), "169.254.169.254"),
            "allowed"
        );
        let p = policy(Mode::DenyInternal);
        assert_eq!(
            p.check_url("http://169.254.169.254/latest/meta-data/")
                .unwrap_err()
                .address,
            "169.254.169.254".parse::<IpAddr>().unwrap()
        );
        assert!(p.check_url("http://[::1]:9090/").is_err());
        assert!(
            p.check_url("http://prometheus.monitoring:9090/").is_ok(),
            "names resolve later"
        );
    }

    #[test]
    fn an_enforcing_policy_without_the_api_servers_address_is_reported() {
        let unknown = Policy {
            api_server: Vec::new(),
            ..policy(Mode::DenyInternal)
        };
        let warning = unknown.warning("api.example").expect("a warning");
        assert!(
            warning.contains("\"api.example\" did not resolve"),
            "{warning}"
        );
        assert_eq!(policy(Mode::DenyInternal).warning("api.example"), None);
        let open = Policy {
            api_server: Vec::new(),
            ..policy(Mode::AllowAll)
        };
        assert_eq!(open.warning("api.example"), None, "nothing is enforced");
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses_and_fails_a_name_left_with_none() {
        let resolver = Resolver {
            policy: Arc::new(policy(Mode::DenyInternal)),
        };
        let error = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost is loopback only");
        assert!(error.to_string().contains("(loopback)"), "{error}");
        let mixed = vec![
            SocketAddr::from(([169, 254, 169, 254], 80)),
            SocketAddr::from(([93, 184, 215, 14], 80)),
        ];
        let (allowed, refused) = sift(&policy(Mode::DenyInternal), mixed);
        assert_eq!(allowed, vec![SocketAddr::from(([93, 184, 215, 14], 80))]);
        assert_eq!(refused.unwrap().why, "link-local");
    }
}
