use clap::Parser;
use mirrorctl::cli::Cli;

fn main() {
    let cli = Cli::parse();
    let code = match mirrorctl::run(cli) {
        Ok(code) => code,
        Err(err) => {
            mirrorctl::output::print_error(&err);
            mirrorctl::error::exit_code(&err)
        }
    };
    std::process::exit(code);
}
