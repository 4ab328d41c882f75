//! HTTP clients by connection setting (an extra CA, skipped verification, a proxy), built once:
//! a client holds a connection pool and a TLS configuration worth reusing across ticks. Metric
//! providers and alert providers share them. Every client carries the egress policy.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::outbound::egress::Policy;

/// What makes one client differ from the default one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Setting {
    /// PEM bundle of CAs to trust besides the system's.
    pub ca: Option<String>,
    /// Skip certificate verification (opt-in, warned by the caller).
    pub insecure: bool,
    /// `http://` or `https://` proxy for every request.
    pub proxy: Option<String>,
}

#[derive(Default)]
pub struct Clients {
    egress: Policy,
    built: Mutex<HashMap<Setting, reqwest::Client>>,
}

impl Clients {
    /// Clients that resolve names through `egress`.
    pub fn new(egress: Policy) -> Self {
        Self {
            egress,
            built: Mutex::default(),
        }
    }

    /// The policy, for URLs whose host is an IP address (no lookup to filter).
    pub fn egress(&self) -> &Policy {
        &self.egress
    }

    /// The client a webhook is called with: `base`, or one that does not verify TLS
    /// certificates when the hook sets `disableTLS` (warned at each call: it is opt-in).
    pub fn for_hook(
        &self,
        base: &reqwest::Client,
        hook: &crate::api::canary::Webhook,
    ) -> Result<reqwest::Client, String> {
        if !hook.disable_tls {
            return Ok(base.clone());
        }
        tracing::warn!(hook = %hook.name, "disableTLS: the webhook's TLS certificate is not verified");
        let setting = Setting {
            insecure: true,
            ..Setting::default()
        };
        self.get(base, &setting)
    }

    /// The client for `setting`: `base` when it is the default.
    pub fn get(
        &self,
        base: &reqwest::Client,
        setting: &Setting,
    ) -> Result<reqwest::Client, String> {
        if *setting == Setting::default() {
            return Ok(base.clone());
        }
        let mut clients = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(setting) {
            return Ok(client.clone());
        }
        let mut builder = self
            .egress
            .client_builder()
            .danger_accept_invalid_certs(setting.insecure);
        if let Some(pem) = &setting.ca {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("ca.crt is not a PEM certificate bundle: {e}"))?;
            if certificates.is_empty() {
                return Err("ca.crt holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(proxy) = &setting.proxy {
            // The proxy URL may carry credentials: the error does not repeat it.
            self.egress
                .check_url(proxy)
                .map_err(|r| format!("proxy: {r}"))?;
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|_| "proxy is not a valid http:// or https:// URL".to_string())?;
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        clients.insert(setting.clone(), client.clone());
        Ok(client)
    }
}
