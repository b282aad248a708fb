//! `tidings`: the Server-Sent Events hub and its tools.

mod decode;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tidings: a Server-Sent Events hub and toolkit.
#[derive(Debug, Parser)]
#[command(name = "tidings", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(Box<serve::Args>),
    Decode(decode::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Decode(args) => decode::run(args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("tidings: {error:#}");
        ExitCode::from(2)
    })
}
