use clap::Parser;
use mirrorctl::cli::Cli;

fn main() {
    let cli = Cli::parse();
    let json = cli.command.json();
    let code = match mirrorctl::run(cli) {
        Ok(code) => code,
        Err(err) => {
            mirrorctl::output::print_error(&err);
            let code = mirrorctl::error::exit_code(&err);
            if json {
                println!("{}", mirrorctl::output::error_document(&err, code));
            }
            code
        }
    };
    std::process::exit(code);
}
