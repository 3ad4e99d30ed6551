//! Command-line interface.

mod dtmf;
mod keys;
mod sync;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a failed command (bad input, unreadable file). `dtmf scan` uses 1 for
/// "found something", so errors use 2 everywhere.
pub(crate) const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "ivrpay", version, about = "Telephony payments with DTMF masking")]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline DTMF tools on WAV files (8 kHz mono, 16-bit PCM, µ-law or A-law), using the
    /// same code as the live media path.
    #[command(subcommand)]
    Dtmf(dtmf::DtmfCommand),
    /// Run the service: SIP B2BUA, media relay with DTMF masking, HTTP API. With no
    /// arguments it runs on embedded defaults (SIP on 127.0.0.1:5060, HTTP on 127.0.0.1:8080,
    /// data in ./ivrpay-data, the built-in sip-profiles/).
    Serve(crate::serve::ServeArgs),
    /// Master keys of the card vault: rotate without downtime, retire unused old keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Reports of the downstream sync: the daily settlement report, the ledger journal.
    #[command(subcommand)]
    Report(sync::ReportCommand),
    /// Outbox deliveries to webhooks, CRM, receipts and the ledger: list, retry, replay.
    #[command(subcommand)]
    Deliveries(sync::DeliveriesCommand),
}

pub(crate) fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Dtmf(command) => dtmf::run(command),
        Command::Serve(args) => crate::serve::run(args),
        Command::Keys(command) => keys::run(command),
        Command::Report(command) => sync::report(command),
        Command::Deliveries(command) => sync::deliveries(command),
    }
}
