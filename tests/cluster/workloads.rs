//! Test Deployments that behave the same under the pod simulator (which reads the readiness
//! annotation) and on a real cluster (where busybox and its probes produce the same readiness),
//! so the suite runs unchanged against kind.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use serde_json::{Value, json};

use super::pods::READINESS;

/// A small image every registry mirror has.
pub const IMAGE: &str = "busybox:1.36";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Running, never Ready (a failing readiness probe).
    Never,
    /// Ready after this many seconds.
    After(u32),
    /// The container exits at once, again and again.
    CrashLoop,
}

impl Readiness {
    fn annotation(self) -> String {
        match self {
            Self::Ready => "ready".into(),
            Self::Never => "never".into(),
            Self::After(seconds) => format!("after={seconds}s"),
            Self::CrashLoop => "crashloop".into(),
        }
    }

    fn container(self, version: &str) -> Value {
        let probe = |command: &str, delay: u32| json!({"exec": {"command": ["sh", "-c", command]}, "initialDelaySeconds": delay, "periodSeconds": 1});
        let (command, readiness) = match self {
            Self::Ready => ("sleep 3600", probe("true", 0)),
            Self::Never => ("sleep 3600", probe("false", 0)),
            Self::After(seconds) => ("sleep 3600", probe("true", seconds)),
            Self::CrashLoop => ("exit 1", probe("true", 0)),
        };
        json!({
            "name": "app",
            "image": IMAGE,
            "command": ["sh", "-c", command],
            "env": [{"name": "VERSION", "value": version}],
            "readinessProbe": readiness,
        })
    }
}

/// A Deployment `name` running `version` (an environment variable: changing it changes the pod
/// template, as a new image would).
pub fn deployment(name: &str, version: &str, replicas: i32, readiness: Readiness) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {READINESS: readiness.annotation()}},
                "spec": {"containers": [readiness.container(version)], "terminationGracePeriodSeconds": 1},
            },
        },
    }))
    .expect("a valid Deployment")
}

/// A DaemonSet `name` running `version` on every node, rolled one node at a time.
pub fn daemon_set(name: &str, version: &str, readiness: Readiness) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {READINESS: readiness.annotation()}},
                "spec": {"containers": [readiness.container(version)], "terminationGracePeriodSeconds": 1},
            },
        },
    }))
    .expect("a valid DaemonSet")
}

/// A StatefulSet `name` of `replicas` pods running `version`, each with a claim from the
/// `data` template in `storage_class` (bound by the test to volumes it creates), governed by
/// the headless Service `<name>-headless`.
pub fn stateful_set(name: &str, version: &str, replicas: i32, storage_class: &str) -> StatefulSet {
    let mut container = Readiness::Ready.container(version);
    container["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{name}-headless"),
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {READINESS: Readiness::Ready.annotation()}},
                "spec": {
                    "containers": [container],
                    "terminationGracePeriodSeconds": 1,
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": "1Mi"}}},
            }],
        },
    }))
    .expect("a valid StatefulSet")
}

/// A strategic-merge patch setting the `app` container's VERSION: a new pod template.
pub fn set_version(version: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "VERSION", "value": version}]}]}}}})
}
