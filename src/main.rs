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
                let doc = serde_json::json!({ "ok": false, "error": format!("{err:#}"), "exit_code": code });
                println!("{doc}");
            }
            code
        }
    };
    std::process::exit(code);
}
