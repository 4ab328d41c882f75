//! `serin gate open|close|approve|halt NAME`: the load tester's gates of one Canary, opened and
//! closed from the command line.
//!
//! The command writes the load tester's gate ConfigMap itself rather than calling the load
//! tester's `/gate/open`: the ConfigMap is where the gates live (the load tester keeps no
//! state of its own), so the result is the same, but the write goes through the user's own
//! Kubernetes credentials — RBAC says who may open a gate and the audit log says who did —
//! and it works from outside the cluster, without a port-forward to the load tester or its
//! bearer token. The Canary's webhooks say which gates matter and where the load tester runs:
//! a webhook URL `http://<service>.<namespace>/gate/check` puts the ConfigMap in that
//! namespace (`--gates-namespace` says otherwise).
//!
//! The load tester keeps one gate per Canary, which all its confirm hooks that call
//! `/gate/check` check (`gate.<namespace>.<name>`), and one rollback gate (`/rollback/check`).
//! `approve` opens the gate for the revision under analysis only (as the promotion's
//! confirmation); `halt` closes it so the rollout holds at its next gate. Flagger's static
//! `/gate/approve` and `/gate/halt` URLs always answer the same: a hook calling them cannot be
//! changed from here, and the command says so.

use crate::api::canary::Webhook;
use crate::api::status::Phase;
use crate::api::{Canary, HookKind};
use crate::engine::short;
use crate::loadtester::gates::{self, Kind, State, Store};

/// What to do with the gate.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateAction {
    /// Open the gate (for the first revision that checks it).
    Open,
    /// Close the gate.
    Close,
    /// Open the gate for the revision under analysis only: its confirm-promotion passes.
    Approve,
    /// Close the gate: the rollout holds at its next confirm gate.
    Halt,
}

impl GateAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Close => "close",
            Self::Approve => "approve",
            Self::Halt => "halt",
        }
    }
}

/// Where the gates are kept (the load tester's flags of the same names).
#[derive(clap::Args, Debug, Clone)]
pub struct Location {
    /// Namespace of the load tester's gate ConfigMap (default: from the gate webhook's URL
    /// host `<service>.<namespace>`, else the Canary's).
    #[arg(long)]
    pub gates_namespace: Option<String>,
    /// Name of the load tester's gate ConfigMap.
    #[arg(long, default_value = "serin-loadtester-gates")]
    pub gates_configmap: String,
    /// The rollback gate (`/rollback/check`) instead of the confirm gate: open asks for a
    /// rollback.
    #[arg(long)]
    pub rollback: bool,
}

/// The most gates the ConfigMap may hold (1 MiB); the load tester's own `--max-gates` bounds
/// what it adds, the CLI only what a ConfigMap can take.
const MAX_GATES: usize = 2000;

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Done,
    Refused(String),
}

pub async fn run(
    client: kube::Client,
    namespace: &str,
    name: &str,
    action: GateAction,
    location: &Location,
) -> anyhow::Result<Answer> {
    let canary = super::canaries::get(&client, namespace, name).await?.canary;
    let kind = if location.rollback {
        Kind::Rollback
    } else {
        Kind::Gate
    };
    let plan = match plan(&canary, namespace, action, kind, location) {
        Ok(plan) => plan,
        Err(why) => {
            eprintln!(
                "gate {} refused: canary {namespace}/{name}: {why}",
                action.as_str()
            );
            return Ok(Answer::Refused(why));
        }
    };
    let key = gates::checked_key(kind, namespace, name).map_err(anyhow::Error::msg)?;
    let store = Store::new(
        client,
        &plan.namespace,
        &location.gates_configmap,
        MAX_GATES,
    );
    store.set(&key, plan.state.clone()).await?;
    let what = match (&plan.state, kind) {
        (State::Open { revision: Some(r) }, _) => format!("opened for revision {}", short(r)),
        (State::Open { revision: None }, Kind::Rollback) => {
            "opened: the canary rolls back at its next check".into()
        }
        (State::Open { revision: None }, Kind::Gate) => "opened".into(),
        (State::Closed, _) => "closed".into(),
    };
    crate::outln!(
        "gate {key} {what} (ConfigMap {}/{}){}",
        plan.namespace,
        location.gates_configmap,
        plan.note
    );
    Ok(Answer::Done)
}

/// What the command will write, and where; Err says why nothing should be.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    namespace: String,
    state: State,
    note: &'static str,
}

fn plan(
    canary: &Canary,
    namespace: &str,
    action: GateAction,
    kind: Kind,
    location: &Location,
) -> Result<Plan, String> {
    let (path, kinds) = match kind {
        Kind::Gate => ("/gate/check", CONFIRM.as_slice()),
        Kind::Rollback => ("/rollback/check", [HookKind::Rollback].as_slice()),
    };
    let hooks: Vec<&Webhook> = canary
        .spec
        .analysis
        .webhooks
        .iter()
        .filter(|w| kinds.contains(&w.kind))
        .collect();
    let checking: Vec<&Webhook> = hooks
        .iter()
        .copied()
        .filter(|w| url_path(&w.url) == Some(path))
        .collect();
    if checking.is_empty() {
        return Err(no_gate(&hooks, path));
    }
    let needed: &[HookKind] = match (action, kind) {
        (_, Kind::Rollback) => &[HookKind::Rollback],
        (GateAction::Approve, Kind::Gate) => &[HookKind::ConfirmPromotion],
        _ => CONFIRM.as_slice(),
    };
    if !checking.iter().any(|w| needed.contains(&w.kind)) {
        return Err(format!(
            "{} needs a confirm-promotion webhook calling the load tester's {path}; this Canary's gate hooks are {}",
            action.as_str(),
            names(&checking)
        ));
    }
    let status = canary.status.clone().unwrap_or_default();
    let state = match action {
        GateAction::Open => State::Open { revision: None },
        GateAction::Close | GateAction::Halt => State::Closed,
        GateAction::Approve => {
            let under_way = matches!(
                status.phase,
                Some(Phase::Waiting | Phase::Progressing | Phase::WaitingPromotion)
            );
            let revision = status.last_applied_spec.clone().filter(|_| under_way);
            let Some(revision) = revision else {
                return Err(format!(
                    "approve applies to a rollout under way (Waiting, Progressing or WaitingPromotion); the phase is {}",
                    status.phase.map_or("(new)", Phase::as_str)
                ));
            };
            State::Open {
                revision: Some(revision),
            }
        }
    };
    let note = match action {
        GateAction::Halt => "; the rollout holds at its next confirm gate",
        GateAction::Approve => "; a later revision needs its own approval",
        _ => "",
    };
    Ok(Plan {
        namespace: gates_namespace(&checking, namespace, location)?,
        state,
        note,
    })
}

/// The hook kinds that check the confirm gate.
const CONFIRM: [HookKind; 3] = [
    HookKind::ConfirmRollout,
    HookKind::ConfirmTrafficIncrease,
    HookKind::ConfirmPromotion,
];

/// Why there is no gate to change: no such hook, or hooks calling something else.
fn no_gate(hooks: &[&Webhook], path: &str) -> String {
    let fixed: Vec<&&Webhook> = hooks
        .iter()
        .filter(|w| matches!(url_path(&w.url), Some("/gate/approve" | "/gate/halt")))
        .collect();
    if let Some(hook) = fixed.first() {
        return format!(
            "webhook {} calls {}, which always answers the same (Flagger's static gate): point it at the load tester's {path} to open and close it",
            hook.name, hook.url
        );
    }
    if hooks.is_empty() {
        return format!("no webhook checks a gate: add one calling the load tester's {path}");
    }
    format!(
        "no webhook calls the load tester's {path} ({} call other URLs): nothing would check this gate",
        names(hooks)
    )
}

fn names(hooks: &[&Webhook]) -> String {
    hooks
        .iter()
        .map(|w| format!("{} ({})", w.name, w.kind.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The path of a webhook URL, without query.
fn url_path(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &rest[rest.find('/')?..];
    Some(
        path.split(['?', '#'])
            .next()
            .unwrap_or(path)
            .trim_end_matches('/'),
    )
}

/// The ConfigMap's namespace: the flag, else the second label of the gate hooks' host
/// (`service.namespace[.svc...]`), else the Canary's own.
fn gates_namespace(
    hooks: &[&Webhook],
    canary_namespace: &str,
    location: &Location,
) -> Result<String, String> {
    if let Some(namespace) = &location.gates_namespace {
        gates::checked_namespace(namespace).map_err(|e| format!("--gates-namespace: {e}"))?;
        return Ok(namespace.clone());
    }
    let mut found: Vec<String> = hooks
        .iter()
        .map(|w| host_namespace(&w.url).unwrap_or_else(|| canary_namespace.to_string()))
        .collect();
    found.sort();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "the gate webhooks call load testers in namespaces {}: say which with --gates-namespace",
            found.join(", ")
        )),
    }
}

/// `namespace` of a URL host `service.namespace[.svc[.cluster.local]][:port]`; None for a
/// bare service name or an address.
fn host_namespace(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    let mut labels = host.split('.');
    let (_service, namespace) = (labels.next()?, labels.next()?);
    let is_address = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    (!is_address && gates::checked_namespace(namespace).is_ok()).then(|| namespace.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(hooks: serde_json::Value, phase: Option<&str>) -> Canary {
        let mut value = serde_json::json!({
            "apiVersion": "serin.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "service": {"port": 80},
                "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 10, "webhooks": hooks},
            },
        });
        if let Some(phase) = phase {
            value["status"] =
                serde_json::json!({"phase": phase, "lastAppliedSpec": "0123456789abcdef"});
        }
        serde_json::from_value(value).unwrap()
    }

    fn location() -> Location {
        Location {
            gates_namespace: None,
            gates_configmap: "serin-loadtester-gates".into(),
            rollback: false,
        }
    }

    fn hook(kind: &str, url: &str) -> serde_json::Value {
        serde_json::json!({"name": format!("{kind}-hook"), "type": kind, "url": url})
    }

    #[test]
    fn the_configmap_is_in_the_load_testers_namespace() {
        let c = canary(
            serde_json::json!([hook(
                "confirm-rollout",
                "http://serin-loadtester.tools:8080/gate/check/"
            )]),
            None,
        );
        let plan = plan(&c, "apps", GateAction::Open, Kind::Gate, &location()).unwrap();
        assert_eq!(plan.namespace, "tools");
        assert_eq!(plan.state, State::Open { revision: None });
        let c = canary(
            serde_json::json!([hook("confirm-rollout", "http://loadtester/gate/check")]),
            None,
        );
        assert_eq!(plan_ns(&c), "apps");
    }

    fn plan_ns(c: &Canary) -> String {
        plan(c, "apps", GateAction::Close, Kind::Gate, &location())
            .unwrap()
            .namespace
    }

    #[test]
    fn approve_opens_for_the_revision_under_analysis_only() {
        let hooks = serde_json::json!([hook("confirm-promotion", "http://lt.apps/gate/check")]);
        let c = canary(hooks.clone(), Some("WaitingPromotion"));
        let plan = plan(&c, "apps", GateAction::Approve, Kind::Gate, &location()).unwrap();
        assert_eq!(
            plan.state,
            State::Open {
                revision: Some("0123456789abcdef".into())
            }
        );
        let settled = canary(hooks, Some("Succeeded"));
        let why = super::plan(
            &settled,
            "apps",
            GateAction::Approve,
            Kind::Gate,
            &location(),
        )
        .unwrap_err();
        assert!(why.contains("the phase is Succeeded"), "{why}");
        let rollout_only = canary(
            serde_json::json!([hook("confirm-rollout", "http://lt.apps/gate/check")]),
            Some("Waiting"),
        );
        let why = super::plan(
            &rollout_only,
            "apps",
            GateAction::Approve,
            Kind::Gate,
            &location(),
        )
        .unwrap_err();
        assert!(why.contains("needs a confirm-promotion webhook"), "{why}");
    }

    #[test]
    fn a_gate_nothing_checks_is_refused_with_the_reason() {
        let none = canary(serde_json::json!([]), None);
        let why = plan(&none, "apps", GateAction::Open, Kind::Gate, &location()).unwrap_err();
        assert!(why.contains("no webhook checks a gate"), "{why}");
        let fixed = canary(
            serde_json::json!([hook("confirm-promotion", "http://lt.apps/gate/halt")]),
            None,
        );
        let why = plan(&fixed, "apps", GateAction::Open, Kind::Gate, &location()).unwrap_err();
        assert!(why.contains("always answers the same"), "{why}");
        let rollback = canary(
            serde_json::json!([hook("confirm-promotion", "http://lt.apps/gate/check")]),
            None,
        );
        let why = plan(
            &rollback,
            "apps",
            GateAction::Open,
            Kind::Rollback,
            &location(),
        )
        .unwrap_err();
        assert!(why.contains("/rollback/check"), "{why}");
    }

    #[test]
    fn hosts_name_their_namespace() {
        assert_eq!(
            host_namespace("http://lt.tools.svc.cluster.local:80/gate/check").as_deref(),
            Some("tools")
        );
        assert_eq!(host_namespace("http://lt/gate/check"), None);
        assert_eq!(host_namespace("http://10.0.0.1:8080/gate/check"), None);
        assert_eq!(
            url_path("http://lt.tools/gate/check?x=1"),
            Some("/gate/check")
        );
    }
}
