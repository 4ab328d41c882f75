//! The `serin` command line. Exit codes: 0 success, 1 the run did not end as expected,
//! 2 bad input or an error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use serin::api::provider::{self, TrafficProvider};
use serin::cli::request::Answer;
use serin::cli::wait::{Ended, Outcome};
use serin::cli::{Connection, Format};
use serin::engine::input::RequestAction;
use serin::judge::compare::{Class, Comparison, Direction, JudgeConfig, compare};
use serin::judge::samples;
use serin::picture::{self, distribution};
use serin::sim::{self, Scenario};

#[derive(Parser)]
#[command(name = "serin", version, about = "Progressive delivery for Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// kubectl's flags, anywhere on the line.
    #[command(flatten)]
    connection: Connection,
}

#[derive(Subcommand)]
enum Command {
    /// Run a rollout scenario through the engine on a virtual clock and print its timeline.
    Simulate {
        /// Scenario file (see docs/simulate.md), e.g. examples/podinfo-promote.yaml.
        scenario: PathBuf,
        #[command(flatten)]
        provider: DefaultProvider,
        /// text and json: the timeline; html, svg: a drawing of it; markdown: Mermaid charts
        /// and a table for a pull-request comment (docs/simulate.md).
        #[arg(short, long, value_enum, default_value_t = SimulateOutput::Text)]
        output: SimulateOutput,
    },
    /// Run the controller: watch Canaries and roll out every change of their targets.
    Controller(Box<serin::controller::Options>),
    /// Serve webhooks that generate HTTP load for canaries, and gates kept in a ConfigMap
    /// (`serin loadtester token` prints a namespace's token).
    Loadtester(serin::loadtester::Options),
    /// Print the CustomResourceDefinitions (YAML).
    Crds {
        /// The API group: serin.dev, or flagger.app for drop-in mode (the same schema under
        /// Flagger's group, a superset of Flagger's; see docs/migrating.md).
        #[arg(long, default_value = "serin.dev", value_parser = ["serin.dev", "flagger.app"])]
        group: String,
    },
    /// List Canaries: phase, canary weight, failed checks, revision, age.
    Get {
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Only Canaries whose labels match (kubectl's syntax: app=web,tier!=cache).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show one rollout: progress, checks, gates, conditions and recent events.
    Status {
        name: String,
        /// Keep showing it as it changes, until the rollout ends (exit codes as `wait`).
        #[arg(short, long)]
        watch: bool,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Move the rollout one step forward now (the next weight or iteration; from the last
    /// step, promote); with --full, promote now, skipping the rest of the analysis.
    Promote {
        name: String,
        /// Skip every remaining step and check: promote now.
        #[arg(long)]
        full: bool,
    },
    /// Restart the primary's pods (as `kubectl rollout restart` does); not a new revision.
    Restart(RequestArgs),
    /// Roll the target back to the last promoted revision: the primary's pod template is
    /// written back into it (a GitOps tool re-applies git's version: revert in git too).
    Undo {
        name: String,
        /// Print the diff of the target's pod template instead of writing it.
        #[arg(long)]
        dry_run: bool,
        /// An earlier revision the primary ran (its first characters, as `serin history`
        /// shows them), from the primary's ReplicaSets or ControllerRevisions.
        #[arg(long)]
        to_revision: Option<String>,
    },
    /// Open or close the load tester's gate of a Canary (approve: open for the revision under
    /// analysis; halt: close, the rollout holds at its next gate).
    Gate {
        #[arg(value_enum)]
        action: serin::cli::gate::GateAction,
        name: String,
        #[command(flatten)]
        location: serin::cli::gate::Location,
    },
    /// The Canary's last rollouts: revision, outcome, when, how far, why, failing checks.
    History {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Roll the canary back now.
    Abort(RequestArgs),
    /// Run a failed revision's rollout again.
    Retry(RequestArgs),
    /// Freeze the rollout where it is (timers stop) until `resume`.
    Pause(RequestArgs),
    /// Continue a paused rollout.
    Resume(RequestArgs),
    /// Wait until the rollout of the target's current revision ends (exit 0 the awaited outcome,
    /// 1 the other outcome, 2 timeout or error).
    Wait {
        name: String,
        /// The outcome to wait for.
        #[arg(long = "for", value_enum, default_value_t = Outcome::Promoted)]
        outcome: Outcome,
        /// Give up after this long (Go duration).
        #[arg(long, default_value = "15m")]
        timeout: serin::api::Duration,
    },
    /// Validate Canary, MetricTemplate and AlertProvider manifests offline, as the controller
    /// would (exit 0 valid, 1 problems found, 2 unreadable input).
    Check {
        /// Files or directories (searched for *.yaml, *.yml, *.json; Helm templates and YAML
        /// that is not a manifest are skipped there with a note); `-` reads standard input.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        provider: DefaultProvider,
        /// Refuse templateRef/providerRef naming another namespace, as the controller does
        /// with this flag (the chart's default).
        #[arg(long, env = "SERIN_NO_CROSS_NAMESPACE_REFS")]
        no_cross_namespace_refs: bool,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Convert Flagger manifests to serin's API, keeping each file's layout and comments: on
    /// stdout, or in place; what needs a human decision goes to stderr (exit 0 nothing to
    /// decide, 1 decisions listed, 2 unreadable input).
    Migrate {
        /// Files or directories (searched for *.yaml, *.yml, *.json); `-` reads standard input.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Rewrite each file that changes in place (atomically) instead of printing.
        #[arg(long)]
        in_place: bool,
    },
    /// Print this binary's version and the controller's (from its Deployment in the cluster).
    Version {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Print a shell completion script (clap_complete), e.g. `source <(serin completion bash)`.
    Completion { shell: clap_complete::Shell },
    /// Compare two recorded samples as the statistical judge would (exit 0 no regression,
    /// 1 regression, 3 too few samples, 2 bad input).
    Judge(JudgeArgs),
}

#[derive(clap::Args)]
struct RequestArgs {
    name: String,
}

#[derive(clap::Args)]
struct JudgeArgs {
    /// Canary values: one number per line, CSV (last column), or a Prometheus query response.
    #[arg(long)]
    canary: PathBuf,
    /// Primary (baseline) values, same formats.
    #[arg(long)]
    primary: PathBuf,
    /// Which change is a regression.
    #[arg(long, value_enum, default_value_t = DirectionArg::Increase)]
    direction: DirectionArg,
    /// Confidence level of the test, in (0, 1).
    #[arg(long, default_value_t = 0.98)]
    confidence: f64,
    /// Relative change of the mean tolerated even when significant (0.1 = 10%).
    #[arg(long, default_value_t = 0.1)]
    allowed_change: f64,
    /// Fewer values on either side is "no data".
    #[arg(long, default_value_t = 20)]
    min_samples: usize,
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Also draw both distributions, the shift with its interval and the allowed band into
    /// this file: FILE.svg or FILE.html.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DirectionArg {
    Increase,
    Decrease,
    Either,
}

/// The provider of Canaries that name none, as the controller's `--mesh-provider`.
#[derive(clap::Args, Debug, Clone)]
struct DefaultProvider {
    /// Traffic provider for Canaries without spec.provider (the controller's --mesh-provider).
    #[arg(long, env = "SERIN_MESH_PROVIDER", default_value = provider::DEFAULT_NAME)]
    mesh_provider: String,
}

impl DefaultProvider {
    fn parse(&self) -> anyhow::Result<TrafficProvider> {
        TrafficProvider::parse(&self.mesh_provider)
            .map_err(|e| anyhow::anyhow!("--mesh-provider: {e}"))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum SimulateOutput {
    Text,
    Json,
    /// A self-contained page with the timeline drawn (no scripts).
    Html,
    Svg,
    /// Mermaid charts and a table (GitHub renders them in comments).
    Markdown,
}

/// Runs a long-lived server command (controller, load tester) with logging set up.
fn serve(
    log_format: serin::controller::LogFormat,
    log_level: Option<serin::controller::options::LogLevel>,
    server: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<ExitCode> {
    // reqwest and kube use rustls without a default crypto provider: install ring first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(log_format, log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(server)?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr, filtered by RUST_LOG (else `level`, default `info`), as text or JSON lines.
fn init_logging(
    format: serin::controller::LogFormat,
    level: Option<serin::controller::options::LogLevel>,
) {
    use tracing_subscriber::EnvFilter;
    let level = level.map_or("info", |l| l.as_str());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colour only for a person at a terminal: a log file or a log collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        serin::controller::LogFormat::Json => builder.json().init(),
        serin::controller::LogFormat::Text => builder.init(),
    }
}

/// The command line, with Flagger's flags and environment variables read into `serin
/// controller`'s (`controller::flagger_flags`); a Flagger flag serin cannot honour ends here.
fn command_line() -> Result<Vec<std::ffi::OsString>, String> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != "controller") {
        return Ok(args);
    }
    // Non-UTF-8 arguments are no Flagger flags: clap reports them.
    let Some(texts) = args[2..]
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
    else {
        return Ok(args);
    };
    let env = |name: &str| std::env::var(name).ok();
    let translated = serin::controller::flagger_flags::translate(&texts, &env)
        .map_err(|refused| format!("error: {refused}"))?;
    Ok(args[..2]
        .iter()
        .cloned()
        .chain(translated.into_iter().map(Into::into))
        .collect())
}

/// Parses the command line; run as `kubectl-serin` (a kubectl plugin), usage and help say
/// `kubectl serin`.
fn parse(args: Vec<std::ffi::OsString>) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let plugin = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|name| name == "kubectl-serin");
    let mut command = Cli::command();
    if plugin {
        command = command.bin_name("kubectl serin");
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let cli = match command_line() {
        Ok(args) => parse(args),
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let result = run(cli.command, cli.connection);
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command, connection: Connection) -> anyhow::Result<ExitCode> {
    match command {
        Command::Simulate {
            scenario,
            provider,
            output,
        } => provider
            .parse()
            .and_then(|provider| simulate(&scenario, provider, output)),
        Command::Controller(options) => serve(options.log_format, options.log_level, async move {
            serin::controller::run(*options, connection.kube_config().await).await
        }),
        Command::Loadtester(options) => match &options.tool {
            Some(tool) => tool.run().map(|()| ExitCode::SUCCESS),
            None => serve(options.log_format, None, async move {
                serin::loadtester::run(options, connection.kube_config().await).await
            }),
        },
        Command::Crds { group } => crds(&group),
        Command::Judge(args) => judge(&args),
        Command::Completion { shell } => completion(shell),
        Command::Version { output } => version(connection, output),
        Command::Get {
            all_namespaces,
            selector,
            output,
        } => on_cluster(connection, |client, namespace| async move {
            let namespace = (!all_namespaces).then_some(namespace);
            serin::cli::get::run(client, namespace.as_deref(), selector.as_deref(), output).await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Status {
            name,
            watch,
            output,
        } => on_cluster(connection, |client, namespace| async move {
            let ended = serin::cli::status::run(client, &namespace, &name, watch, output).await?;
            Ok(match ended {
                Some(Ended::Other(what)) => {
                    eprintln!("canary {namespace}/{name}: {what}");
                    ExitCode::from(1)
                }
                Some(Ended::Met(_)) | None => ExitCode::SUCCESS,
            })
        }),
        Command::Promote { name, full } => {
            let action = if full {
                RequestAction::Promote
            } else {
                RequestAction::Step
            };
            request(connection, RequestArgs { name }, action)
        }
        Command::Restart(args) => on_cluster(connection, |client, namespace| async move {
            serin::cli::restart::run(client, &namespace, &args.name).await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Undo {
            name,
            dry_run,
            to_revision,
        } => on_cluster(connection, |client, namespace| async move {
            use serin::cli::undo::{Answer, Options};
            let options = Options {
                dry_run,
                to_revision,
            };
            let answer = serin::cli::undo::run(client, &namespace, &name, options).await?;
            Ok(match answer {
                Answer::Undone | Answer::Shown => ExitCode::SUCCESS,
                Answer::Refused(_) => ExitCode::from(1),
            })
        }),
        Command::Gate {
            action,
            name,
            location,
        } => on_cluster(connection, |client, namespace| async move {
            use serin::cli::gate::Answer;
            let answer =
                serin::cli::gate::run(client, &namespace, &name, action, &location).await?;
            Ok(match answer {
                Answer::Done => ExitCode::SUCCESS,
                Answer::Refused(_) => ExitCode::from(1),
            })
        }),
        Command::History { name, output } => {
            on_cluster(connection, |client, namespace| async move {
                serin::cli::history::run(client, &namespace, &name, output).await?;
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Abort(args) => request(connection, args, RequestAction::Abort),
        Command::Retry(args) => request(connection, args, RequestAction::Retry),
        Command::Pause(args) => request(connection, args, RequestAction::Pause),
        Command::Resume(args) => request(connection, args, RequestAction::Resume),
        Command::Wait {
            name,
            outcome,
            timeout,
        } => on_cluster(connection, |client, namespace| async move {
            let ended =
                serin::cli::wait::run(client, &namespace, &name, outcome, timeout.as_std()).await?;
            Ok(match ended {
                Some(Ended::Met(what)) => {
                    serin::outln!("canary {namespace}/{name}: {what}");
                    ExitCode::SUCCESS
                }
                Some(Ended::Other(what)) => {
                    serin::outln!("canary {namespace}/{name}: {what}");
                    ExitCode::from(1)
                }
                None => {
                    eprintln!("canary {namespace}/{name}: not settled within {timeout}");
                    ExitCode::from(2)
                }
            })
        }),
        Command::Check {
            paths,
            provider,
            no_cross_namespace_refs,
            output,
        } => provider.parse().and_then(|default_provider| {
            let controller = serin::cli::check::Controller {
                default_provider,
                no_cross_namespace_refs,
            };
            check(&paths, controller, output)
        }),
        Command::Migrate { paths, in_place } => migrate(&paths, in_place),
    }
}

/// Runs a command against the cluster of the kubeconfig.
fn on_cluster<F, Fut>(connection: Connection, command: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let (client, namespace) = connection.connect().await?;
        command(client, namespace).await
    })
}

fn request(
    connection: Connection,
    args: RequestArgs,
    action: RequestAction,
) -> anyhow::Result<ExitCode> {
    on_cluster(connection, |client, namespace| async move {
        let answer = serin::cli::request::run(client, &namespace, &args.name, action).await?;
        Ok(match answer {
            Answer::Acknowledged => ExitCode::SUCCESS,
            Answer::Refused(_) | Answer::NotAcknowledged => ExitCode::from(1),
        })
    })
}

/// The client's version at once; the controllers' from the cluster (in `-n`'s namespace when
/// given, else in every namespace).
fn version(connection: Connection, output: Format) -> anyhow::Result<ExitCode> {
    use serin::cli::version::{self, Versions};
    if output == Format::Table {
        serin::outln!("Client     serin {}", version::CLIENT);
    }
    let only = connection.namespace.clone();
    on_cluster(connection, |client, _| async move {
        let versions = Versions {
            client: version::CLIENT.to_string(),
            controllers: version::controllers(client, only.as_deref()).await?,
        };
        match output {
            Format::Table => serin::out!("{}", version::text(&versions.controllers)),
            format => serin::cli::print_structured(&versions, format)?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn completion(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "serin", &mut script);
    serin::out!("{}", String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}

fn check(
    paths: &[PathBuf],
    controller: serin::cli::check::Controller,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let report = serin::cli::check::run(paths, controller)?;
    match output {
        Output::Json => serin::outln!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            for problem in &report.problems {
                serin::outln!("{problem}");
            }
            for warning in &report.warnings {
                serin::outln!("warning: {warning}");
            }
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            let count = |n: usize, what: &str| match n {
                1 => format!("1 {what}"),
                n => format!("{n} {what}s"),
            };
            eprintln!(
                "checked {} serin objects ({} other documents skipped): {}{}",
                report.checked,
                report.skipped,
                match report.problems.len() {
                    0 => "no problems".to_string(),
                    n => count(n, "problem"),
                },
                match report.warnings.len() {
                    0 => String::new(),
                    n => format!(", {}", count(n, "warning")),
                }
            );
        }
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn migrate(paths: &[PathBuf], in_place: bool) -> anyhow::Result<ExitCode> {
    use serin::cli::migrate::{self, output};
    if in_place
        && paths
            .iter()
            .any(|p| p.as_os_str() == serin::cli::check::STDIN)
    {
        anyhow::bail!("--in-place: standard input (-) has no file to rewrite");
    }
    let (sources, problems, notes) = serin::cli::check::read_sources(paths)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    // Nothing is written unless every file was read.
    if let Some(problem) = problems.first() {
        anyhow::bail!("{problem}");
    }
    let migration = migrate::migrate(&sources);
    if in_place {
        let written = output::in_place(&migration.files)?;
        eprintln!(
            "rewrote {written} of {} files in place",
            migration.files.len()
        );
    } else {
        serin::out!("{}", output::stdout(&migration.files));
    }
    for note in &migration.reserialised {
        eprintln!("note: {note}");
    }
    for note in &migration.notes {
        eprintln!("needs a decision: {note}");
    }
    eprintln!(
        "converted {} Flagger objects; {} need a decision",
        migration.converted,
        migration.notes.len()
    );
    Ok(if migration.notes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn simulate(
    path: &PathBuf,
    provider: TrafficProvider,
    output: SimulateOutput,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let scenario = Scenario::from_yaml(&text, provider)
        .with_context(|| format!("{} is not a valid scenario", path.display()))?;
    for warning in &scenario.plan.warnings {
        eprintln!("warning: canary.{warning}");
    }
    let report = sim::run(&scenario);
    let plan = &scenario.plan;
    match output {
        SimulateOutput::Text => serin::out!("{}", sim::report::text(&report)),
        SimulateOutput::Json => serin::outln!("{}", serde_json::to_string_pretty(&report)?),
        SimulateOutput::Html => serin::out!("{}", picture::rollout_html(&report, plan)),
        SimulateOutput::Svg => serin::out!("{}", picture::rollout_svg(&report, plan)),
        SimulateOutput::Markdown => serin::out!("{}", picture::rollout_markdown(&report, plan)),
    }
    Ok(if report.outcome.expected == Some(false) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn crds(group: &str) -> anyhow::Result<ExitCode> {
    let group = serin::api::group::ApiGroup::of_api_version(&format!("{group}/v1beta1"))
        .unwrap_or_default();
    serin::out!("{}", serin::api::crds::yaml_for(group)?);
    Ok(ExitCode::SUCCESS)
}

fn judge(args: &JudgeArgs) -> anyhow::Result<ExitCode> {
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        anyhow::bail!(
            "--confidence: must be between 0 and 1 (exclusive), got {}",
            args.confidence
        );
    }
    if !(args.allowed_change >= 0.0 && args.allowed_change.is_finite()) {
        anyhow::bail!(
            "--allowed-change: must be a number >= 0, got {}",
            args.allowed_change
        );
    }
    let read = |path: &PathBuf, flag: &str| -> anyhow::Result<Vec<f64>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{flag}: reading {}", path.display()))?;
        samples::parse(&text).with_context(|| format!("{flag}: {}", path.display()))
    };
    let config = JudgeConfig {
        direction: match args.direction {
            DirectionArg::Increase => Direction::Increase,
            DirectionArg::Decrease => Direction::Decrease,
            DirectionArg::Either => Direction::Either,
        },
        allowed_change: args.allowed_change,
        confidence: args.confidence,
        min_samples: args.min_samples,
    };
    let plot = args.plot.as_deref().map(PlotFormat::of).transpose()?;
    let (canary, primary) = (
        read(&args.canary, "--canary")?,
        read(&args.primary, "--primary")?,
    );
    let result = compare(&canary, &primary, &config);
    if let (Some(format), Some(path)) = (plot, &args.plot) {
        let judged = distribution::Judged {
            canary: &canary,
            primary: &primary,
            result: &result,
            config: &config,
        };
        let drawing = match format {
            PlotFormat::Svg => distribution::svg(&judged),
            PlotFormat::Html => distribution::html(&judged),
        };
        std::fs::write(path, drawing)
            .with_context(|| format!("--plot: writing {}", path.display()))?;
    }
    match args.output {
        Output::Text => serin::out!("{}", judgement_text(&result, &config)),
        Output::Json => serin::outln!("{}", serde_json::to_string_pretty(&result)?),
    }
    Ok(match (result.class, result.failed) {
        (Class::NoData, _) => ExitCode::from(3),
        (_, true) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// What `judge --plot FILE` writes, from the file's extension.
#[derive(Clone, Copy)]
enum PlotFormat {
    Svg,
    Html,
}

impl PlotFormat {
    fn of(path: &std::path::Path) -> anyhow::Result<Self> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("svg") => Ok(Self::Svg),
            Some("html" | "htm") => Ok(Self::Html),
            _ => anyhow::bail!(
                "--plot {}: the file name must end in .svg or .html (the format drawn)",
                path.display()
            ),
        }
    }
}

fn judgement_text(r: &Comparison, config: &JudgeConfig) -> String {
    use std::fmt::Write;
    // Extreme magnitudes in scientific notation: 1.7e308 in fixed point is 309 digits.
    let num = |v: Option<f64>| {
        v.map_or("-".to_string(), |v| match v.abs() {
            a if a >= 1e15 => format!("{v:.4e}"),
            _ => format!("{v:.4}"),
        })
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "canary   {} values, mean {}",
        r.canary_count,
        num(r.canary_mean)
    );
    let _ = writeln!(
        out,
        "primary  {} values, mean {}",
        r.baseline_count,
        num(r.baseline_mean)
    );
    if r.dropped > 0 {
        let _ = writeln!(out, "left out {} non-finite values (NaN, Inf)", r.dropped);
    }
    if r.class != Class::NoData {
        let p = r.p_value.map_or("-".into(), |p| {
            if p < 0.001 {
                format!("{p:.2e}")
            } else {
                format!("{p:.4}")
            }
        });
        let _ = writeln!(
            out,
            "Mann-Whitney U {} (z {}), two-sided p {p}",
            num(r.u),
            num(r.z)
        );
        let _ = writeln!(
            out,
            "shift (Hodges-Lehmann) {}, {:.0}% interval [{}, {}]",
            num(r.shift),
            config.confidence * 100.0,
            num(r.shift_lower),
            num(r.shift_upper)
        );
        let change = r
            .change
            .map_or("-".into(), |c| format!("{:+.1}%", c * 100.0));
        let _ = writeln!(
            out,
            "effect (mean ratio) {}, change of the mean {change}",
            num(r.effect)
        );
    }
    let verdict = if r.failed {
        "regression"
    } else if r.class == Class::NoData {
        "no data"
    } else {
        "no regression"
    };
    let _ = writeln!(out, "class {:?}: {verdict} ({})", r.class, r.reason);
    out
}
