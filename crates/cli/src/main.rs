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

// jemalloc, not glibc's malloc, for the binary (libraries leave the choice
// to their embedder). Measured with 10 000 idle subscribers (BENCHMARKS.md,
// "The allocator"): 1 810 → 1 520 bytes each, glibc's per-thread arenas
// holding memory freed on other threads; scenario D 5-19 % more deliveries
// per second, B unchanged. mimalloc was tried: 2 020-2 400 bytes each.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
