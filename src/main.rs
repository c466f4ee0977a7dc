use clap::Parser;
use mirrorctl::cli::Cli;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(usage_error(e)),
    };
    let json = cli.command.json();
    let code = match mirrorctl::run(cli) {
        Ok(code) => code,
        Err(err) => {
            mirrorctl::output::print_error(&err);
            let code = mirrorctl::error::exit_code(&err);
            if json {
                let doc = mirrorctl::output::error_document(&err, code);
                mirrorctl::diag::write_out(format_args!("{doc}\n"));
            }
            code
        }
    };
    // A closed pipe is the reader's choice (`| head`); a stdout that could not take the output
    // (a full disk) fails a run that otherwise succeeded.
    if code == 0 && mirrorctl::diag::stdout_failed() {
        eprintln!("error: could not write the output to stdout");
        std::process::exit(1);
    }
    std::process::exit(code);
}

/// A command line clap refused (or `--help` / `--version`): clap's own text on stderr (help
/// and version on stdout), and with `--json` the error document on stdout too. Exit 2 for a
/// usage error, 0 for help and version.
fn usage_error(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.exit_code() == 0 {
        return 0;
    }
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if json {
        // clap's message without its usage and help-pointer lines, on one line.
        let rendered = e.render().to_string();
        let message = rendered
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .trim_start_matches("error: ")
            .to_string();
        let err = anyhow::Error::new(mirrorctl::error::UserError(message));
        let doc = mirrorctl::output::error_document(&err, 2);
        mirrorctl::diag::write_out(format_args!("{doc}\n"));
    }
    2
}
