//! The `wt-host` binary: a thin shell over the library. Prints the error chain
//! on one line and maps it to an exit code (2 for bad input, 1 otherwise).

mod cli;
mod errors;
mod license_cli;
mod lifecycle;
mod registry_cli;
mod remote;
mod run;

use std::process::ExitCode;

fn main() -> ExitCode {
    use clap::Parser;
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wt-worker")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("wt-host: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(args.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wt-host: {}", errors::one_line(&err));
            ExitCode::from(errors::exit_code(&err))
        }
    }
}
