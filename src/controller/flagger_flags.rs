//! Flagger's command line and environment, read into `serin controller`'s own flags, so a
//! Flagger Deployment's `args:` and `env:` start serin unchanged. Flagger spells long flags
//! with one dash (Go's `flag` package: `-mesh-provider=istio`, `-mesh-provider istio`, and
//! booleans as `-flag` or `-flag=false`); serin's flags keep two. A Flagger flag serin has an
//! equivalent for becomes that flag; one it cannot honour is refused with the reason, never
//! dropped: a controller running differently from what its Deployment says is worse than one
//! that does not start.

use std::fmt;

/// A Flagger flag or variable serin refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub flag: String,
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for Refused {}

/// What serin does with one of Flagger's flags.
enum Meaning {
    /// serin's flag of the same meaning, taking the value as given.
    Same(&'static str),
    /// A boolean: serin's switch when true; nothing when false (serin's default).
    Switch(&'static str),
    /// Flagger's value is serin's default behaviour; any other value cannot be honoured.
    Only(&'static str, &'static str),
    /// Values rewritten into serin's flags.
    Rewrite(fn(&str) -> Result<Vec<String>, String>),
    /// Cannot be honoured: the reason.
    Refuse(&'static str),
}

/// Flagger's flags (cmd/flagger/main.go), each with what serin makes of it; `-slack-url` and
/// `-msteams-url`, which also choose the alert type, are read in [`translate`].
fn meaning(name: &str) -> Option<Meaning> {
    use Meaning::*;
    Some(match name {
        "mesh-provider" => Same("--mesh-provider"),
        "metrics-server" => Same("--metrics-server"),
        "namespace" => Same("--namespace"),
        "cluster-name" => Same("--cluster-name"),
        "event-webhook" => Same("--event-webhook"),
        "leader-election-namespace" => Same("--leader-election-namespace"),
        "slack-user" => Same("--alert-username"),
        "slack-channel" => Same("--alert-channel"),
        "threadiness" => Same("--concurrency"),
        "log-level" => Same("--log-level"),
        "no-cross-namespace-refs" => Switch("--no-cross-namespace-refs"),
        "enable-leader-election" => Switch("--leader-election"),
        "enable-config-tracking" => Only(
            "true",
            "serin always tracks the ConfigMaps and Secrets a target references; it cannot turn tracking off",
        ),
        "selector-labels" => Only(
            "app,name,app.kubernetes.io/name",
            "serin selects pods with the target Deployment's own spec.selector, whatever its labels; it cannot be limited to a list of label names",
        ),
        "port" => Rewrite(|port| {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("{port:?} is not a port number"))?;
            Ok(vec![format!("--listen=0.0.0.0:{port}")])
        }),
        "zap-encoding" => Rewrite(|encoding| match encoding {
            "json" => Ok(vec!["--log-format=json".into()]),
            "console" => Ok(vec!["--log-format=text".into()]),
            other => Err(format!(
                "{other:?} is not an encoding: expected json or console"
            )),
        }),
        "kubeconfig" => Same("--kubeconfig"),
        "master" => Refuse(
            "serin reads the API server's address from the kubeconfig (--kubeconfig, KUBECONFIG or in-cluster); remove it",
        ),
        "kubeconfig-qps" | "kubeconfig-burst" => Refuse(
            "serin's Kubernetes client is not rate-limited on the client side (the API server's priority and fairness applies); remove it",
        ),
        "kubeconfig-service-mesh" => Same("--kubeconfig-service-mesh"),
        "include-label-prefix" => Refuse(
            "serin copies the target's labels to the primary as they are; it cannot filter them by prefix",
        ),
        "ingress-annotations-prefix" => Same("--ingress-annotations-prefix"),
        "ingress-class" => Same("--ingress-class"),
        "slack-token" | "slack-proxy-url" | "msteams-proxy-url" => Refuse(
            "the controller's default alert destination takes a webhook URL only: use an AlertProvider (its Secret holds token and proxy) for this",
        ),
        "control-loop-interval" => Refuse(
            "serin acts on watch events and each Canary's analysis.interval, not on a control loop; remove it",
        ),
        "zap-replace-globals" => Refuse("serin has no zap logger to configure; remove it"),
        "version" => Refuse("run `serin --version`"),
        _ => return None,
    })
}

/// Flagger's environment variables and serin's flag for each (checked only when neither that
/// flag nor its own variable is set), in order: Teams first, as Flagger prefers it when both
/// URLs are set.
const VARIABLES: &[(&str, &str, Option<&str>)] = &[
    ("MSTEAMS_URL", "--alert-url", Some("msteams")),
    ("SLACK_URL", "--alert-url", Some("slack")),
    ("SLACK_CHANNEL", "--alert-channel", None),
    ("SLACK_USER", "--alert-username", None),
    ("EVENT_WEBHOOK_URL", "--event-webhook", None),
];

/// Variables serin cannot honour.
const REFUSED_VARIABLES: &[&str] = &["SLACK_TOKEN", "SLACK_PROXY_URL", "MSTEAMS_PROXY_URL"];

/// `serin controller`'s arguments with Flagger's flags and variables turned into serin's.
/// `env` reads an environment variable.
pub fn translate(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Refused> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some((name, inline)) = flagger_flag(arg) else {
            out.push(arg.clone());
            continue;
        };
        let refuse = |reason: String| Refused {
            flag: format!("-{name}"),
            reason,
        };
        if name == "slack-url" || name == "msteams-url" {
            let value =
                value_of(inline, &mut rest).ok_or_else(|| refuse("needs a value".into()))?;
            let kind = if name == "slack-url" {
                "slack"
            } else {
                "msteams"
            };
            out.extend([
                format!("--alert-url={value}"),
                format!("--alert-type={kind}"),
            ]);
            continue;
        }
        let Some(meaning) = meaning(name) else {
            return Err(refuse(
                "neither a serin flag (serin's take two dashes) nor a Flagger flag serin knows"
                    .into(),
            ));
        };
        out.extend(apply(meaning, inline, &mut rest).map_err(refuse)?);
    }
    from_environment(&mut out, env)?;
    Ok(out)
}

/// `-name` or `-name=value` (one dash, a name of more than one letter): Flagger's spelling.
fn flagger_flag(arg: &str) -> Option<(&str, Option<&str>)> {
    let flag = arg.strip_prefix('-').filter(|f| !f.starts_with('-'))?;
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    (name.len() > 1).then_some((name, value))
}

fn value_of<'a>(
    inline: Option<&'a str>,
    rest: &mut std::slice::Iter<'a, String>,
) -> Option<&'a str> {
    inline.or_else(|| rest.next().map(String::as_str))
}

fn apply<'a>(
    meaning: Meaning,
    inline: Option<&'a str>,
    rest: &mut std::slice::Iter<'a, String>,
) -> Result<Vec<String>, String> {
    match meaning {
        Meaning::Same(flag) => {
            let value = value_of(inline, rest).ok_or("needs a value")?;
            let value = if flag == "--log-level" && value == "warning" {
                "warn"
            } else {
                value
            };
            Ok(vec![format!("{flag}={value}")])
        }
        // Go reads a boolean flag's value only after `=`.
        Meaning::Switch(flag) => match inline.unwrap_or("true") {
            "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(vec![flag.to_string()]),
            "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(Vec::new()),
            other => Err(format!("{other:?} is not a boolean")),
        },
        Meaning::Only(accepted, reason) => {
            let value = if accepted == "true" {
                inline.unwrap_or("true")
            } else {
                value_of(inline, rest).ok_or("needs a value")?
            };
            if value == accepted || (accepted == "true" && matches!(value, "1" | "t" | "True")) {
                Ok(Vec::new())
            } else {
                Err(format!("{value:?} cannot be honoured: {reason}"))
            }
        }
        Meaning::Rewrite(rewrite) => rewrite(value_of(inline, rest).ok_or("needs a value")?),
        Meaning::Refuse(reason) => Err(reason.to_string()),
    }
}

/// Flagger's variables for what the arguments and serin's own variables leave unset.
fn from_environment(
    out: &mut Vec<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Refused> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    for name in REFUSED_VARIABLES {
        if set(name).is_some() {
            return Err(Refused {
                flag: (*name).to_string(),
                reason: "the controller's default alert destination takes a webhook URL only: use an AlertProvider (its Secret holds token and proxy) instead".into(),
            });
        }
    }
    for &(variable, flag, kind) in VARIABLES {
        let Some(value) = set(variable) else { continue };
        let own_variable = format!(
            "SERIN_{}",
            flag.trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase()
        );
        let given = out
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if given || set(&own_variable).is_some() {
            continue;
        }
        out.push(format!("{flag}={value}"));
        if let Some(kind) = kind {
            out.push(format!("--alert-type={kind}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn flaggers_chart_arguments_become_serins_flags() {
        let flagger = args(&[
            "-log-level=info",
            "-mesh-provider=istio",
            "-metrics-server",
            "http://prometheus:9090",
            "-selector-labels=app,name,app.kubernetes.io/name",
            "-enable-config-tracking=true",
            "-slack-user=flagger",
            "-slack-channel=deploys",
            "-enable-leader-election=true",
            "-leader-election-namespace=flagger-system",
            "-threadiness=4",
            "-cluster-name=prod",
            "-no-cross-namespace-refs=false",
            "-port=9090",
            "-ingress-annotations-prefix=custom.ingress.kubernetes.io",
            "--label-selector=shard=a",
        ]);
        assert_eq!(
            translate(&flagger, &no_env).unwrap(),
            args(&[
                "--log-level=info",
                "--mesh-provider=istio",
                "--metrics-server=http://prometheus:9090",
                "--alert-username=flagger",
                "--alert-channel=deploys",
                "--leader-election",
                "--leader-election-namespace=flagger-system",
                "--concurrency=4",
                "--cluster-name=prod",
                "--listen=0.0.0.0:9090",
                "--ingress-annotations-prefix=custom.ingress.kubernetes.io",
                "--label-selector=shard=a",
            ])
        );
    }

    #[test]
    fn a_flag_serin_cannot_honour_is_refused_naming_it() {
        let refused = |list: &[&str]| translate(&args(list), &no_env).unwrap_err().to_string();
        assert!(refused(&["-kubeconfig-qps=100"]).starts_with("-kubeconfig-qps: "));
        assert!(refused(&["-enable-config-tracking=false"]).contains("always tracks"));
        assert!(refused(&["-selector-labels=app"]).contains("spec.selector"));
        assert!(refused(&["-include-label-prefix=app"]).contains("prefix"));
        assert!(refused(&["-frobnicate"]).contains("nor a Flagger flag"));
        assert!(refused(&["-port=http"]).contains("not a port"));
    }

    #[test]
    fn alert_urls_choose_the_alert_type_and_variables_fill_what_flags_leave() {
        assert_eq!(
            translate(&args(&["-msteams-url", "https://teams.test/x"]), &no_env).unwrap(),
            args(&["--alert-url=https://teams.test/x", "--alert-type=msteams"])
        );
        let env = |name: &str| match name {
            "SLACK_URL" => Some("https://hooks.slack.test/x".to_string()),
            "EVENT_WEBHOOK_URL" => Some("https://events.test/".to_string()),
            "SLACK_CHANNEL" => Some("deploys".to_string()),
            _ => None,
        };
        assert_eq!(
            translate(&args(&["--alert-channel=ops"]), &env).unwrap(),
            args(&[
                "--alert-channel=ops",
                "--alert-url=https://hooks.slack.test/x",
                "--alert-type=slack",
                "--event-webhook=https://events.test/",
            ])
        );
        let both = |name: &str| match name {
            "SLACK_URL" => Some("https://hooks.slack.test/x".to_string()),
            "MSTEAMS_URL" => Some("https://teams.test/x".to_string()),
            _ => None,
        };
        assert_eq!(
            translate(&[], &both).unwrap(),
            args(&["--alert-url=https://teams.test/x", "--alert-type=msteams"]),
            "Teams wins, as in Flagger"
        );
        let token = |name: &str| (name == "SLACK_TOKEN").then(|| "xoxb".to_string());
        assert!(
            translate(&[], &token)
                .unwrap_err()
                .to_string()
                .starts_with("SLACK_TOKEN: ")
        );
    }
}
