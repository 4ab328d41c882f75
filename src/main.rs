//! The `serin` command line. Exit codes: 0 success, 1 the run did not end as expected,
//! 2 bad input or an error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use serin::sim::{self, Scenario};

#[derive(Parser)]
#[command(name = "serin", version, about = "Progressive delivery for Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a rollout scenario through the engine on a virtual clock and print its timeline.
    Simulate {
        /// Scenario file (see docs/simulate.md), e.g. examples/podinfo-promote.yaml.
        scenario: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the CustomResourceDefinitions (YAML).
    Crds,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate { scenario, output } => simulate(&scenario, output),
        Command::Crds => crds(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn simulate(path: &PathBuf, output: Output) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let scenario = Scenario::from_yaml(&text)
        .with_context(|| format!("{} is not a valid scenario", path.display()))?;
    let report = sim::run(&scenario);
    match output {
        Output::Text => print!("{}", sim::report::text(&report)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.outcome.expected == Some(false) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn crds() -> anyhow::Result<ExitCode> {
    print!("{}", serin::api::crds::yaml()?);
    Ok(ExitCode::SUCCESS)
}
