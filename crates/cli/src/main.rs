//! `tidings`: the Server-Sent Events hub and its tools.

// Doc comments here are clap's --help text: shell examples hold URLs that
// must stay bare to be copied.
#![allow(rustdoc::bare_urls)]

mod bench;
mod decode;
mod publish;
mod serve;
mod subscribe;
mod tls;
mod token;

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
    Subscribe(subscribe::Args),
    Publish(publish::Args),
    Token(token::Args),
    Decode(decode::Args),
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Subscribe(args) => subscribe::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Token(args) => token::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Bench(args) => bench::run(args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("tidings: {error:#}");
        ExitCode::from(2)
    })
}
