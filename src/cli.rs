//! The command line, defined once: `--help`, the README's flag lists and `completions/` all come
//! from these definitions.

use crate::mirror::{self, Mirror, MirrorArg, MirrorSet, UrlCredentials};
use crate::targets::TargetName;
use crate::units;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "mirrorctl",
    version,
    about = "Wire container clients to a registry pull-through cache, prove it works, and undo it",
    long_about = "mirrorctl points a runner's container clients (dockerd, BuildKit, containerd, \
podman/CRI-O/skopeo/buildah, k3s/rke2, Earthly, buildx builders) at a \
registry pull-through cache (a mirror), idempotently and reversibly: every change is shown as a \
diff, written atomically and journaled so `disarm` can put back exactly what was there.\n\n\
Exit codes: 0 success (including \"unchanged\"), 1 failure, 2 bad input or usage (bad URL, \
unparseable config file)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/",
        env = "MIRRORCTL_ROOT"
    )]
    pub root: PathBuf,

    /// Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]
    #[arg(long, global = true, value_name = "DIR", env = "MIRRORCTL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// When to color output (NO_COLOR is honoured)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Print only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Point client configs at one or more mirrors (idempotent; shows a diff)
    #[command(after_help = "Examples:\n  \
mirrorctl arm --mirror http://10.0.0.5:5000\n  \
mirrorctl arm --mirror https://mirror.example --target docker,containerd --dry-run\n  \
mirrorctl arm --registry ghcr.io --mirror http://10.0.0.5:5001\n  \
mirrorctl arm --mirror http://10.0.0.5:5000 --mirror ghcr.io=http://10.0.0.5:5001 --reload")]
    Arm(ArmArgs),

    /// Revert exactly what `arm` did (byte for byte where the file was not touched since)
    #[command(
        after_help = "Examples:\n  mirrorctl disarm\n  mirrorctl disarm --target docker --reload --json"
    )]
    Disarm(DisarmArgs),

    /// Show, per target, whether it is armed, with which mirrors, and any drift
    Status(StatusArgs),

    /// Run a pull-through cache (one content-addressed store, one upstream fetch per blob)
    #[command(after_help = "Examples:\n  \
mirrorctl serve --listen 127.0.0.1:5000\n  \
mirrorctl serve --listen :0 --upstream http://10.0.0.9:5000 --cache-dir /var/cache/mirror\n  \
mirrorctl serve --upstream ghcr.io=https://ghcr.io --max-size 20G --tag-ttl 10m --json-log\n\n\
Every manifest and blob response carries an RFC 9211 `Cache-Status` header \
(`mirrorctl; hit`, `mirrorctl; fwd=uri-miss; stored`, `...; collapsed`, `mirrorctl; fwd=stale`). \
Prometheus metrics are at /metrics, among them each upstream's pull budget as it reports it \
(Docker Hub's ratelimit-* headers: mirrorctl_upstream_ratelimit_remaining{upstream=...}).")]
    Serve(ServeArgs),

    /// Prove that pulls go through the mirror and that the mirror serves them from its cache
    #[command(after_help = "Examples:\n  \
mirrorctl verify --mirror http://10.0.0.5:5000\n  \
mirrorctl verify --mirror https://mirror.example --image ghcr.io/org/app:1.2 --json\n  \
mirrorctl verify --mirror http://127.0.0.1:5000 --block-upstream\n  \
mirrorctl verify --cleanup\n\n\
Exit codes: 0 pull #2 was served from the mirror's cache (proven by a cache header, or inferred \
from distribution's storage fingerprint after a miss on pull #1); 1 verification failed; 2 bad usage.")]
    Verify(VerifyArgs),

    /// Pull images through a mirror so its cache holds them before a rebuild storm
    #[command(after_help = "Examples:\n  \
mirrorctl warm --mirror http://10.0.0.5:5000 alpine:3.20 debian:12-slim\n  \
mirrorctl warm --mirror http://10.0.0.5:5000 --from-dockerfile Dockerfile --platform linux/amd64\n  \
mirrorctl warm --mirror https://mirror.example --from-file base-images.txt --jobs 8 --json\n\n\
Each image is pulled with mirrorctl's own registry client, every blob digest-checked and dropped \
(a blob shared by several images is fetched once). Images of registries other than docker.io \
are asked for with `?ns=REGISTRY`, as containerd does. A blob the mirror redirects to object \
storage (distribution on S3 answers a stored blob with a 307 to a presigned URL) is followed \
without the mirror's credentials. Exit codes: 0 every image warmed; 1 an \
image failed; 2 bad usage.")]
    Warm(WarmArgs),

    /// Print what `arm` would write into an empty root, or dockerd's flags, for images and pod templates
    #[command(after_help = "Examples:\n  \
mirrorctl render dockerd-args --mirror http://10.0.0.5:5000 --json\n  \
mirrorctl render daemon.json --mirror http://10.0.0.5:5000 --output ./daemon.json\n  \
mirrorctl render hosts.toml --mirror http://10.0.0.5:5000 --mirror quay.io=http://10.0.0.5:5001 --for quay.io\n  \
mirrorctl render registries.conf --mirror https://mirror.example\n\n\
Reads nothing on this machine (not --root, not the journal) and changes nothing but --output. \
The text is the arm planner's for an absent file, byte for byte.")]
    Render(RenderArgs),

    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  mirrorctl completions bash > /etc/bash_completion.d/mirrorctl"
    )]
    Completions {
        /// The shell to generate for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Whether the user asked for one JSON document on stdout.
    pub fn json(&self) -> bool {
        match self {
            Command::Arm(a) => a.common.json,
            Command::Disarm(a) => a.common.json,
            Command::Status(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Warm(a) => a.json,
            Command::Render(a) => a.json,
            Command::Completions { .. } | Command::Serve(_) => false,
        }
    }
}

/// `--mirror`, `--registry`, `--insecure`: one definition of the mirror flags and one validation
/// for every command that takes a mirror set.
#[derive(Debug, Clone, Args)]
pub struct MirrorOpts {
    /// Mirror URL, scheme required (`https://host/<project>` for a Harbor proxy-cache project); `REGISTRY=URL` mirrors another registry (repeatable, order kept)
    #[arg(long = "mirror", value_name = "[REGISTRY=]URL", required = true, value_parser = MirrorArg::arm)]
    pub mirrors: Vec<MirrorArg>,

    /// Registry that `--mirror` values without `REGISTRY=` apply to
    #[arg(long, value_name = "HOST", default_value = "docker.io", value_parser = mirror::registry_name)]
    pub registry: String,

    /// Skip TLS verification for https mirrors (http mirrors are always marked insecure)
    #[arg(long)]
    pub insecure: bool,
}

impl MirrorOpts {
    /// The validated set: registry → mirrors, in the order given.
    pub fn set(&self) -> Result<MirrorSet, crate::error::UserError> {
        MirrorSet::new(&self.mirrors, &self.registry, self.insecure)
    }
}

#[derive(Debug, Args)]
pub struct ArmArgs {
    #[command(flatten)]
    pub mirror: MirrorOpts,

    /// Targets to configure, comma-separated or repeated [default: every target found under --root]
    #[arg(
        long = "target",
        value_enum,
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub targets: Vec<TargetName>,

    /// Earthly's config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]
    #[arg(long, value_name = "FILE")]
    pub earthly_config: Option<PathBuf>,

    /// Plan the docker target for this dockerd version (also `MIRRORCTL_DOCKERD_VERSION`) instead of asking the root's `dockerd --version`
    /// (28 and later also get /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io)
    #[arg(long, value_name = "X.Y")]
    pub dockerd_version: Option<String>,

    /// Plan the containerd target for this containerd version (also `MIRRORCTL_CONTAINERD_VERSION`) instead of asking the root's `containerd --version`
    /// (decides dial_timeout, `_default` for a migrated `*` mirror, the config_path-list warning)
    #[arg(long, value_name = "X.Y.Z")]
    pub containerd_version: Option<String>,

    /// containerd's `dial_timeout` for each mirror host (containerd 2.1+ and 2.0.7+ only; never written for older or unknown versions): how long a dead mirror delays the fallback; 0 to leave it out
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = units::any_duration)]
    pub dial_timeout: Duration,

    /// Convert legacy configs arm otherwise refuses: containerd's deprecated CRI `registry.mirrors` / `configs.<host>.tls` into hosts.toml, and `version = 2` for a versionless config.toml whose CRI tables use the long plugin id; disarm puts them back
    #[arg(long)]
    pub migrate: bool,

    /// Do not ask each mirror `GET /v2/` before writing (for images built before the mirror runs; also MIRRORCTL_NO_PREFLIGHT=1)
    #[arg(long, env = "MIRRORCTL_NO_PREFLIGHT", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub no_preflight: bool,

    /// How long preflight waits for each mirror
    #[arg(long, value_name = "DUR", default_value = "10", value_parser = units::positive_duration)]
    pub preflight_timeout: Duration,

    /// Arm dockerd for a mirror that needs credentials (dockerd sends it only its docker.io credentials)
    #[arg(long)]
    pub allow_auth_mirror: bool,

    /// After writing and reloading (implies --reload), pull --image with each armed target's real client through the mirror; roll this run back when one fails
    #[arg(long)]
    pub verify: bool,

    /// The probe image for --verify
    #[arg(
        long,
        value_name = "REF",
        default_value = "docker.io/library/alpine:latest",
        requires = "verify"
    )]
    pub image: String,

    /// With --verify: map the upstream's host names to 0.0.0.0 in <root>/etc/hosts while the clients pull
    #[arg(long, requires = "verify")]
    pub block_upstream: bool,

    /// With --verify: how long each client's pull may take
    #[arg(long, value_name = "DUR", default_value = "120", value_parser = units::positive_duration, requires = "verify")]
    pub probe_timeout: Duration,

    #[command(flatten)]
    pub common: WriteOpts,
}

#[derive(Debug, Args)]
pub struct DisarmArgs {
    /// Targets to revert, comma-separated or repeated [default: every armed target]
    #[arg(
        long = "target",
        value_enum,
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub targets: Vec<TargetName>,

    #[command(flatten)]
    pub common: WriteOpts,
}

#[derive(Debug, Clone, Args)]
pub struct WriteOpts {
    /// Show what would change; write nothing, not even state
    #[arg(long)]
    pub dry_run: bool,

    /// Reload or restart the daemons whose config changed (dockerd: SIGHUP; others: systemctl)
    #[arg(long)]
    pub reload: bool,

    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    pub json: bool,

    /// How long to wait for another mirrorctl run to release the lock (seconds, or `30s`, `2m`)
    #[arg(long, value_name = "DUR", default_value = "30", value_parser = units::any_duration)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; `:0` picks a free port (the bound address is the first line on stdout)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub listen: String,

    /// Upstream registry URL (`https://host/<project>` fetches from a Harbor project's `/v2/<project>/…`); `REGISTRY=URL` adds one chosen by containerd's `?ns=REGISTRY` (repeatable) [default: https://registry-1.docker.io for docker.io]
    #[arg(long = "upstream", value_name = "[REGISTRY=]URL", value_parser = MirrorArg::upstream)]
    pub upstreams: Vec<MirrorArg>,

    /// Cache directory [default: <state dir>/cache]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Evict least recently used blobs above this size (K, M, G, T = powers of 1024)
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub max_size: Option<u64>,

    /// How long a tag's digest is trusted before revalidating upstream with HEAD (s, m, h, d)
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = units::any_duration)]
    pub tag_ttl: Duration,

    /// User name for the default upstream
    #[arg(long, value_name = "USER", requires = "upstream_password_file")]
    pub upstream_username: Option<String>,

    /// File holding the default upstream's password (never logged)
    #[arg(long, value_name = "FILE", requires = "upstream_username")]
    pub upstream_password_file: Option<PathBuf>,

    /// Require client Basic auth against this htpasswd file (bcrypt entries)
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,

    /// Serve HTTPS with this certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key for --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Access log as JSON lines on stderr (default: combined log format)
    #[arg(long)]
    pub json_log: bool,

    /// Warn when an upstream's reported pull budget (Docker Hub's `ratelimit-remaining`) falls below N; 0 never warns
    #[arg(long, value_name = "N", default_value_t = crate::serve::ratelimit::DEFAULT_WARN)]
    pub ratelimit_warn: u64,
}

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// The mirror to fill, scheme required (`http://host:port`, `https://host`; `user:password@` accepted)
    #[arg(long, value_name = "URL", value_parser = mirror::verify_mirror)]
    pub mirror: (Mirror, Option<UrlCredentials>),

    /// Images to warm (`alpine:3.20`, `ghcr.io/org/app:1`, `name@sha256:…`)
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Also warm the images listed in this file, one reference a line (`#` comments)
    #[arg(long, value_name = "FILE")]
    pub from_file: Vec<PathBuf>,

    /// Also warm the images of this Dockerfile's FROM lines (ARG defaults substituted, stage names skipped)
    #[arg(long, value_name = "FILE")]
    pub from_dockerfile: Vec<PathBuf>,

    /// Platforms to warm from a multi-platform image, comma-separated (`linux/amd64,linux/arm64`) [default: every platform of the index]
    #[arg(long, value_name = "LIST")]
    pub platform: Option<String>,

    /// Downloads at once
    #[arg(long, value_name = "N", default_value = "4", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,

    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    pub json: bool,

    /// How long to wait for a connection and for each read (seconds, or `30s`, `2m`)
    #[arg(long, value_name = "DUR", default_value = "30", value_parser = units::positive_duration)]
    pub timeout: Duration,

    /// User name for the mirror (default: the docker config's credential helper or auths, else anonymous)
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    /// Read the password for --username from stdin
    #[arg(long, requires = "username")]
    pub password_stdin: bool,

    /// Also trust this CA certificate file (PEM) for an https mirror
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    pub json: bool,

    /// Do not ask each armed mirror `GET /v2/` (by default every one is asked, with a short deadline)
    #[arg(long)]
    pub no_probe: bool,

    /// How long each mirror may take to answer
    #[arg(long, value_name = "DUR", default_value = "3", value_parser = units::positive_duration)]
    pub probe_timeout: Duration,

    /// Earthly's config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]
    #[arg(long, value_name = "FILE")]
    pub earthly_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// What to print
    #[arg(value_enum, value_name = "FORMAT")]
    pub format: crate::render::Format,

    #[command(flatten)]
    pub mirror: MirrorOpts,

    /// hosts.toml: the registry whose file to print [default: the only registry the mirrors are for]
    #[arg(long = "for", value_name = "REGISTRY", value_parser = mirror::registry_name)]
    pub for_registry: Option<String>,

    /// dockerd-args, daemon.json: the dockerd they are for (also `MIRRORCTL_DOCKERD_VERSION`); 28 and later read /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io
    #[arg(long, value_name = "X.Y")]
    pub dockerd_version: Option<String>,

    /// Write the text to FILE (atomically; missing parent directories are created) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// dockerd-args: one JSON array of strings, for a container's `args`
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag and environment variable of every subcommand's `--help` is in the README.
    #[test]
    fn the_readme_documents_every_flag() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let mut missing = Vec::new();
        let mut root = Cli::command();
        root.build();
        let mut cmds = vec![(String::from("mirrorctl"), root.clone())];
        cmds.extend(
            root.get_subcommands()
                .map(|c| (format!("mirrorctl {}", c.get_name()), c.clone())),
        );
        for (name, cmd) in cmds {
            for a in cmd.get_arguments() {
                let mut words: Vec<String> = Vec::new();
                if let Some(l) = a.get_long() {
                    words.push(format!("--{l}"));
                }
                if let Some(s) = a.get_short() {
                    words.push(format!("-{s}"));
                }
                if let Some(e) = a.get_env() {
                    words.push(e.to_string_lossy().into_owned());
                }
                for w in words {
                    let shown = readme.contains(&format!("`{w}"))
                        || readme.contains(&format!("{w}`"))
                        || readme.contains(&format!("{w} "))
                        || readme.contains(&format!("{w}/"));
                    if !shown && w != "--help" && w != "-h" {
                        missing.push(format!("{name}: {w}"));
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(
            missing.is_empty(),
            "in --help but not in README.md:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn targets_take_lists_and_repeats() {
        let cli = Cli::try_parse_from([
            "mirrorctl",
            "arm",
            "--mirror",
            "http://a:1",
            "--target",
            "docker,buildkit",
            "--target",
            "containerd",
        ])
        .unwrap();
        let Command::Arm(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.targets, TargetName::all()[..3].to_vec());
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The mirror to verify, scheme required (`http://host:port`, `https://host`, `https://host/<project>`; a `/v2/` path and `user:password@` are accepted)
    #[arg(long, value_name = "URL", required_unless_present_any = ["cleanup", "embedded"], value_parser = mirror::verify_mirror)]
    pub mirror: Option<(Mirror, Option<UrlCredentials>)>,

    /// Verify an in-process `mirrorctl serve` (free loopback port, temporary cache, all removed afterwards) instead of --mirror
    #[arg(long, conflicts_with_all = ["mirror", "clients", "cleanup"])]
    pub embedded: bool,

    /// Upstream of the --embedded server (`https://host/<project>` for a Harbor project) [default: the image's registry, https://registry-1.docker.io for docker.io]
    #[arg(long, value_name = "URL", value_parser = mirror::upstream_url)]
    pub upstream: Option<Mirror>,

    /// The probe image, pulled twice through the mirror
    #[arg(
        long,
        value_name = "REF",
        default_value = "docker.io/library/alpine:latest"
    )]
    pub image: String,

    /// Platform to pick from a multi-platform image [default: this host's]
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,

    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    pub json: bool,

    /// How long to wait for a connection and for each read (seconds, or `30s`, `2m`)
    #[arg(long, value_name = "DUR", default_value = "30", value_parser = units::positive_duration)]
    pub timeout: Duration,

    /// User name for the mirror (default: the docker config's credential helper or auths, else anonymous)
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    /// Read the password for --username from stdin
    #[arg(long, requires = "username")]
    pub password_stdin: bool,

    /// Also trust this CA certificate file (PEM) for an https mirror
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,

    /// Map the upstream registry's host names to 0.0.0.0 and :: in the hosts file during pull #2
    #[arg(long)]
    pub block_upstream: bool,

    /// Hosts file for --block-upstream and --cleanup [default: <root>/etc/hosts]
    #[arg(long, value_name = "PATH")]
    pub hosts_file: Option<PathBuf>,

    /// Also pull the probe with this real client, after pull #2 and while the upstream is blocked (repeatable)
    #[arg(long = "client", value_enum, value_name = "NAME")]
    pub clients: Vec<crate::verify::clients::ClientName>,

    /// Remove a hosts block left by an interrupted `verify --block-upstream`, then exit
    #[arg(long, conflicts_with_all = ["mirror", "block_upstream"])]
    pub cleanup: bool,
}
