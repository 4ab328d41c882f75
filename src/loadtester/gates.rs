//! Gates a human opens and closes (`/gate/open`, `/rollback/open`, ...) and serin's confirm and
//! rollback hooks check. Their state lives in a ConfigMap, not in memory, so a restarted or
//! rescheduled load tester forgets nothing; two replicas see the same gates.
//!
//! An opened gate belongs to one revision: the first check binds it to the checksum it was
//! checked for, and a check for another revision finds it closed again. Approving revision A
//! must not silently approve revision B that was pushed while A waited.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

/// Which gate of a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Checked by confirm-rollout, confirm-traffic-increase and confirm-promotion hooks.
    Gate,
    /// Checked by rollback hooks: open means "roll back".
    Rollback,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Gate => "gate",
            Self::Rollback => "rollback",
        }
    }
}

/// One gate's state, as stored: `closed`, `open` or `open:<checksum>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Closed,
    /// Open; `revision` is the checksum it was first checked for, if any yet.
    Open {
        revision: Option<String>,
    },
}

impl State {
    fn parse(text: Option<&str>) -> Self {
        match text {
            Some("open") => Self::Open { revision: None },
            Some(t) if t.starts_with("open:") => Self::Open {
                revision: Some(t["open:".len()..].to_string()),
            },
            _ => Self::Closed,
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Closed => "closed".into(),
            Self::Open { revision: None } => "open".into(),
            Self::Open { revision: Some(r) } => format!("open:{r}"),
        }
    }

    /// A check for `checksum`: is the gate open for it, and the state to store afterwards.
    pub fn check(&self, checksum: &str) -> (bool, State) {
        match self {
            Self::Closed => (false, Self::Closed),
            Self::Open { revision: None } if checksum.is_empty() => (true, self.clone()),
            Self::Open { revision: None } => (
                true,
                Self::Open {
                    revision: Some(checksum.to_string()),
                },
            ),
            Self::Open { revision: Some(r) } if r == checksum || checksum.is_empty() => {
                (true, self.clone())
            }
            // Opened for an earlier revision: this one needs its own approval.
            Self::Open { revision: Some(_) } => (false, Self::Closed),
        }
    }
}

/// The ConfigMap key of a canary's gate: `gate.<namespace>.<name>`. A namespace has no dots,
/// so the key is unambiguous.
pub fn key(kind: Kind, namespace: &str, name: &str) -> String {
    format!("{}.{namespace}.{name}", kind.prefix())
}

/// A revision checksum longer than this is not one of serin's: refused rather than stored.
pub const MAX_CHECKSUM_LEN: usize = 128;

fn label(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// Is `namespace` a Kubernetes namespace name (a DNS label)?
pub fn checked_namespace(namespace: &str) -> Result<(), String> {
    if namespace.is_empty() || namespace.len() > 63 || !namespace.chars().all(label) {
        return Err(format!(
            "namespace {namespace:?} is not a Kubernetes namespace name"
        ));
    }
    Ok(())
}

/// The key of a gate named in a request, after checking that namespace and name are
/// Kubernetes names: the key must be a valid ConfigMap key, and unambiguous.
pub fn checked_key(kind: Kind, namespace: &str, name: &str) -> Result<String, String> {
    checked_namespace(namespace)?;
    if name.is_empty() || name.len() > 253 || !name.chars().all(|c| label(c) || c == '.') {
        return Err(format!("name {name:?} is not a Kubernetes object name"));
    }
    let key = key(kind, namespace, name);
    if key.len() > 253 {
        return Err(format!(
            "{key:?} is longer than a ConfigMap key may be (253)"
        ));
    }
    Ok(key)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("gate state in ConfigMap {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    /// A ConfigMap holds at most 1 MiB: the number of gates is bounded well below that.
    #[error(
        "ConfigMap {namespace}/{name} holds {max} gates already (--max-gates): close gates of finished rollouts, or remove their keys"
    )]
    Full {
        namespace: String,
        name: String,
        max: usize,
    },
}

/// The ConfigMap holding every gate.
#[derive(Clone)]
pub struct Store {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    max_gates: usize,
}

impl Store {
    pub fn new(client: kube::Client, namespace: &str, name: &str, max_gates: usize) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            max_gates,
        }
    }

    fn error(&self, source: kube::Error) -> StoreError {
        StoreError::Api {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    /// Every gate's state, by key.
    pub async fn all(&self) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
            .and_then(|c| c.data)
            .unwrap_or_default())
    }

    /// Sets a gate. A new gate beyond `max_gates` is refused; closing a gate never stored
    /// stores nothing (a missing gate is closed).
    pub async fn set(&self, key: &str, state: State) -> Result<(), StoreError> {
        let mut full = false;
        self.modify(|data| {
            full = admit(data, key, &state, self.max_gates) == Admission::Full;
            if !full && (data.contains_key(key) || state != State::Closed) {
                data.insert(key.to_string(), state.text());
            }
        })
        .await?;
        if full {
            return Err(StoreError::Full {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                max: self.max_gates,
            });
        }
        Ok(())
    }

    /// Checks a gate for a revision, storing a binding or a reset.
    pub async fn check(&self, key: &str, checksum: &str) -> Result<bool, StoreError> {
        let mut open = false;
        self.modify(|data| {
            let (is_open, next) = State::parse(data.get(key).map(String::as_str)).check(checksum);
            open = is_open;
            if next != State::Closed || data.contains_key(key) {
                data.insert(key.to_string(), next.text());
            }
        })
        .await?;
        Ok(open)
    }

    /// Read, change, write with the resourceVersion read: a concurrent writer (a second replica,
    /// a human with kubectl) makes the write fail with 409 and the change is made again on
    /// the new content.
    async fn modify(
        &self,
        mut change: impl FnMut(&mut BTreeMap<String, String>),
    ) -> Result<(), StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| self.error(e))?;
            let mut data = current
                .as_ref()
                .and_then(|c| c.data.clone())
                .unwrap_or_default();
            let before = data.clone();
            change(&mut data);
            if current.is_some() && data == before {
                return Ok(());
            }
            let result = match current {
                Some(mut config) => {
                    config.data = Some(data);
                    self.api
                        .replace(&self.name, &PostParams::default(), &config)
                        .await
                }
                None => {
                    let mut config = ConfigMap::default();
                    config.metadata.name = Some(self.name.clone());
                    config.metadata.labels = Some(BTreeMap::from([(
                        "app.kubernetes.io/managed-by".to_string(),
                        "serin-loadtester".to_string(),
                    )]));
                    config.data = Some(data);
                    self.api.create(&PostParams::default(), &config).await
                }
            };
            match result {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 && attempts < 10 => continue,
                Err(error) => return Err(self.error(error)),
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Fits,
    Full,
}

/// May `key` be set in `data`: a known gate always, a new open gate only below the bound.
fn admit(data: &BTreeMap<String, String>, key: &str, state: &State, max: usize) -> Admission {
    if data.contains_key(key) || *state == State::Closed || data.len() < max {
        Admission::Fits
    } else {
        Admission::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_gates_stop_at_the_bound_but_known_ones_still_change() {
        let data: BTreeMap<String, String> = (0..3)
            .map(|i| (format!("gate.apps.c{i}"), "open".to_string()))
            .collect();
        let open = State::Open { revision: None };
        assert_eq!(admit(&data, "gate.apps.new", &open, 3), Admission::Full);
        assert_eq!(admit(&data, "gate.apps.new", &open, 4), Admission::Fits);
        assert_eq!(
            admit(&data, "gate.apps.c1", &State::Closed, 3),
            Admission::Fits
        );
        assert_eq!(admit(&data, "gate.apps.c1", &open, 3), Admission::Fits);
    }

    #[test]
    fn gate_names_must_be_kubernetes_names() {
        assert_eq!(
            checked_key(Kind::Gate, "apps", "web").unwrap(),
            "gate.apps.web"
        );
        assert!(
            checked_key(Kind::Gate, "a.b", "web")
                .unwrap_err()
                .contains("namespace")
        );
        assert!(
            checked_key(Kind::Gate, "apps", "Web/x")
                .unwrap_err()
                .contains("name")
        );
        assert!(checked_key(Kind::Gate, "apps", "").is_err());
        let long = "a".repeat(250);
        assert!(
            checked_key(Kind::Rollback, "apps", &long)
                .unwrap_err()
                .contains("253")
        );
    }

    #[test]
    fn an_opened_gate_belongs_to_the_revision_it_first_approves() {
        let open = State::parse(Some("open"));
        let (yes, bound) = open.check("aaa");
        assert!(yes);
        assert_eq!(bound.text(), "open:aaa");
        assert!(bound.check("aaa").0, "the same revision stays approved");
        let (yes, reset) = bound.check("bbb");
        assert!(!yes, "a newer revision needs its own approval");
        assert_eq!(reset, State::Closed);
    }

    #[test]
    fn unknown_or_missing_state_is_closed() {
        assert_eq!(State::parse(None), State::Closed);
        assert_eq!(State::parse(Some("yes")), State::Closed);
        assert!(!State::Closed.check("aaa").0);
    }

    #[test]
    fn keys_name_kind_namespace_and_canary() {
        assert_eq!(key(Kind::Gate, "test", "podinfo"), "gate.test.podinfo");
        assert_eq!(key(Kind::Rollback, "test", "a.b"), "rollback.test.a.b");
    }
}
