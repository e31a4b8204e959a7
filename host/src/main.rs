//! The `tq-conn-proofpoint-tap` binary: a thin layer over the library that
//! turns the command line into a run and the run into an exit status.

use std::process::ExitCode;

fn main() -> ExitCode {
    tq_conn::exit::install_panic_hook();
    let cli = match tq_conn::cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => return tq_conn::exit::usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return tq_conn::exit::fail(
                None,
                tq_conn::run::FailureKind::Local,
                format_args!("cannot start the async runtime: {e}"),
            );
        }
    };
    runtime.block_on(tq_conn::app::main(cli))
}
