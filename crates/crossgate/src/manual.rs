//! What the command line says about itself: shell completion scripts
//! (clap_complete) and man pages (clap_mangen), both generated from the
//! clap definition in [`crate::cli`] so they never drift from it.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

/// `crossgate completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "crossgate", &mut script);
    write_stdout(&script)
}

/// `crossgate man [COMMAND]`: crossgate(1), or crossgate-COMMAND(1), as roff on stdout.
pub fn man_page(subcommand: Option<&str>) -> ExitCode {
    let mut command = Cli::command();
    // Building names each subcommand the way its page is titled
    // (crossgate-audit) and invoked (crossgate audit).
    command.build();
    let page = match subcommand {
        None => command,
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => sub.clone().version(env!("CROSSGATE_VERSION")),
            None => {
                let known: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!(
                    "error: no subcommand `{name}`; the man pages are for: {}",
                    known.join(", ")
                );
                return ExitCode::from(2);
            }
        },
    };
    let mut roff = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut roff) {
        eprintln!("error: cannot render the man page: {e}");
        return ExitCode::from(2);
    }
    write_stdout(&roff)
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure to report.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::from(2)
        }
    }
}
