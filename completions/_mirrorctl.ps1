
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'mirrorctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'mirrorctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'mirrorctl' {
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('arm', 'arm', [CompletionResultType]::ParameterValue, 'Point client configs at one or more mirrors (idempotent; shows a diff)')
            [CompletionResult]::new('disarm', 'disarm', [CompletionResultType]::ParameterValue, 'Revert exactly what `arm` did (byte for byte where the file was not touched since)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show, per target, whether it is armed, with which mirrors, and any drift')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a pull-through cache (one content-addressed store, one upstream fetch per blob)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove that pulls go through the mirror and that the mirror serves them from its cache')
            [CompletionResult]::new('warm', 'warm', [CompletionResultType]::ParameterValue, 'Pull images through a mirror so its cache holds them before a rebuild storm')
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Print what `arm` would write into an empty root, or dockerd''s flags, for images and pod templates')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mirrorctl;arm' {
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'Mirror URL, scheme required (`https://host/<project>` for a Harbor proxy-cache project); `REGISTRY=URL` mirrors another registry (repeatable, order kept)')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'Registry that `--mirror` values without `REGISTRY=` apply to')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Targets to configure, comma-separated or repeated [default: every target found under --root]')
            [CompletionResult]::new('--earthly-config', '--earthly-config', [CompletionResultType]::ParameterName, 'Earthly''s config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]')
            [CompletionResult]::new('--dockerd-version', '--dockerd-version', [CompletionResultType]::ParameterName, 'Plan the docker target for this dockerd version (also `MIRRORCTL_DOCKERD_VERSION`) instead of asking the root''s `dockerd --version` (28 and later also get /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io)')
            [CompletionResult]::new('--containerd-version', '--containerd-version', [CompletionResultType]::ParameterName, 'Plan the containerd target for this containerd version (also `MIRRORCTL_CONTAINERD_VERSION`) instead of asking the root''s `containerd --version` (decides dial_timeout, `_default` for a migrated `*` mirror, the config_path-list warning)')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'containerd''s `dial_timeout` for each mirror host (containerd 2.1+ and 2.0.7+ only; never written for older or unknown versions): how long a dead mirror delays the fallback; 0 to leave it out')
            [CompletionResult]::new('--preflight-timeout', '--preflight-timeout', [CompletionResultType]::ParameterName, 'How long preflight waits for each mirror')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'The probe image for --verify')
            [CompletionResult]::new('--probe-timeout', '--probe-timeout', [CompletionResultType]::ParameterName, 'With --verify: how long each client''s pull may take')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'How long to wait for another mirrorctl run to release the lock (seconds, or `30s`, `2m`)')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Skip TLS verification for https mirrors (http mirrors are always marked insecure)')
            [CompletionResult]::new('--migrate', '--migrate', [CompletionResultType]::ParameterName, 'Convert legacy configs arm otherwise refuses: containerd''s deprecated CRI `registry.mirrors` / `configs.<host>.tls` into hosts.toml, and `version = 2` for a versionless config.toml whose CRI tables use the long plugin id; disarm puts them back')
            [CompletionResult]::new('--no-preflight', '--no-preflight', [CompletionResultType]::ParameterName, 'Do not ask each mirror `GET /v2/` before writing (for images built before the mirror runs; also MIRRORCTL_NO_PREFLIGHT=1)')
            [CompletionResult]::new('--allow-auth-mirror', '--allow-auth-mirror', [CompletionResultType]::ParameterName, 'Arm dockerd for a mirror that needs credentials (dockerd sends it only its docker.io credentials)')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'After writing and reloading (implies --reload), pull --image with each armed target''s real client through the mirror; roll this run back when one fails')
            [CompletionResult]::new('--block-upstream', '--block-upstream', [CompletionResultType]::ParameterName, 'With --verify: map the upstream''s host names to 0.0.0.0 in <root>/etc/hosts while the clients pull')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would change; write nothing, not even state')
            [CompletionResult]::new('--reload', '--reload', [CompletionResultType]::ParameterName, 'Reload or restart the daemons whose config changed (dockerd: SIGHUP; others: systemctl)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mirrorctl;disarm' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Targets to revert, comma-separated or repeated [default: every armed target]')
            [CompletionResult]::new('--lock-timeout', '--lock-timeout', [CompletionResultType]::ParameterName, 'How long to wait for another mirrorctl run to release the lock (seconds, or `30s`, `2m`)')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would change; write nothing, not even state')
            [CompletionResult]::new('--reload', '--reload', [CompletionResultType]::ParameterName, 'Reload or restart the daemons whose config changed (dockerd: SIGHUP; others: systemctl)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mirrorctl;status' {
            [CompletionResult]::new('--probe-timeout', '--probe-timeout', [CompletionResultType]::ParameterName, 'How long each mirror may take to answer')
            [CompletionResult]::new('--earthly-config', '--earthly-config', [CompletionResultType]::ParameterName, 'Earthly''s config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('--no-probe', '--no-probe', [CompletionResultType]::ParameterName, 'Do not ask each armed mirror `GET /v2/` (by default every one is asked, with a short deadline)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'mirrorctl;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on; `:0` picks a free port (the bound address is the first line on stdout)')
            [CompletionResult]::new('--upstream', '--upstream', [CompletionResultType]::ParameterName, 'Upstream registry URL (`https://host/<project>` fetches from a Harbor project''s `/v2/<project>/…`); `REGISTRY=URL` adds one chosen by containerd''s `?ns=REGISTRY` (repeatable) [default: https://registry-1.docker.io for docker.io]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: <state dir>/cache]')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Evict least recently used blobs above this size (K, M, G, T = powers of 1024)')
            [CompletionResult]::new('--tag-ttl', '--tag-ttl', [CompletionResultType]::ParameterName, 'How long a tag''s digest is trusted before revalidating upstream with HEAD (s, m, h, d)')
            [CompletionResult]::new('--upstream-username', '--upstream-username', [CompletionResultType]::ParameterName, 'User name for the default upstream')
            [CompletionResult]::new('--upstream-password-file', '--upstream-password-file', [CompletionResultType]::ParameterName, 'File holding the default upstream''s password (never logged)')
            [CompletionResult]::new('--htpasswd', '--htpasswd', [CompletionResultType]::ParameterName, 'Require client Basic auth against this htpasswd file (bcrypt entries)')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Serve HTTPS with this certificate chain (PEM)')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'Private key for --tls-cert (PEM)')
            [CompletionResult]::new('--ratelimit-warn', '--ratelimit-warn', [CompletionResultType]::ParameterName, 'Warn when an upstream''s reported pull budget (Docker Hub''s `ratelimit-remaining`) falls below N; 0 never warns')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('--json-log', '--json-log', [CompletionResultType]::ParameterName, 'Access log as JSON lines on stderr (default: combined log format)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'mirrorctl;verify' {
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'The mirror to verify, scheme required (`http://host:port`, `https://host`, `https://host/<project>`; a `/v2/` path and `user:password@` are accepted)')
            [CompletionResult]::new('--upstream', '--upstream', [CompletionResultType]::ParameterName, 'Upstream of the --embedded server (`https://host/<project>` for a Harbor project) [default: the image''s registry, https://registry-1.docker.io for docker.io]')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'The probe image, pulled twice through the mirror')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Platform to pick from a multi-platform image [default: this host''s]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for a connection and for each read (seconds, or `30s`, `2m`)')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'User name for the mirror (default: the docker config''s credential helper or auths, else anonymous)')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'Also trust this CA certificate file (PEM) for an https mirror')
            [CompletionResult]::new('--hosts-file', '--hosts-file', [CompletionResultType]::ParameterName, 'Hosts file for --block-upstream and --cleanup [default: <root>/etc/hosts]')
            [CompletionResult]::new('--client', '--client', [CompletionResultType]::ParameterName, 'Also pull the probe with this real client, after pull #2 and while the upstream is blocked (repeatable)')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('--embedded', '--embedded', [CompletionResultType]::ParameterName, 'Verify an in-process `mirrorctl serve` (free loopback port, temporary cache, all removed afterwards) instead of --mirror')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password for --username from stdin')
            [CompletionResult]::new('--block-upstream', '--block-upstream', [CompletionResultType]::ParameterName, 'Map the upstream registry''s host names to 0.0.0.0 and :: in the hosts file during pull #2')
            [CompletionResult]::new('--cleanup', '--cleanup', [CompletionResultType]::ParameterName, 'Remove a hosts block left by an interrupted `verify --block-upstream`, then exit')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mirrorctl;warm' {
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'The mirror to fill, scheme required (`http://host:port`, `https://host`; `user:password@` accepted)')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Also warm the images listed in this file, one reference a line (`#` comments)')
            [CompletionResult]::new('--from-dockerfile', '--from-dockerfile', [CompletionResultType]::ParameterName, 'Also warm the images of this Dockerfile''s FROM lines (ARG defaults substituted, stage names skipped)')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Platforms to warm from a multi-platform image, comma-separated (`linux/amd64,linux/arm64`) [default: every platform of the index]')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Downloads at once')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for a connection and for each read (seconds, or `30s`, `2m`)')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'User name for the mirror (default: the docker config''s credential helper or auths, else anonymous)')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'Also trust this CA certificate file (PEM) for an https mirror')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password for --username from stdin')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'mirrorctl;render' {
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'Mirror URL, scheme required (`https://host/<project>` for a Harbor proxy-cache project); `REGISTRY=URL` mirrors another registry (repeatable, order kept)')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'Registry that `--mirror` values without `REGISTRY=` apply to')
            [CompletionResult]::new('--for', '--for', [CompletionResultType]::ParameterName, 'hosts.toml: the registry whose file to print [default: the only registry the mirrors are for]')
            [CompletionResult]::new('--dockerd-version', '--dockerd-version', [CompletionResultType]::ParameterName, 'dockerd-args, daemon.json: the dockerd they are for (also `MIRRORCTL_DOCKERD_VERSION`); 28 and later read /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the text to FILE (atomically; missing parent directories are created) instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the text to FILE (atomically; missing parent directories are created) instead of stdout')
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Skip TLS verification for https mirrors (http mirrors are always marked insecure)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'dockerd-args: one JSON array of strings, for a container''s `args`')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'mirrorctl;completions' {
            [CompletionResult]::new('--root', '--root', [CompletionResultType]::ParameterName, 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to color output (NO_COLOR is honoured)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more detail (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'mirrorctl;help' {
            [CompletionResult]::new('arm', 'arm', [CompletionResultType]::ParameterValue, 'Point client configs at one or more mirrors (idempotent; shows a diff)')
            [CompletionResult]::new('disarm', 'disarm', [CompletionResultType]::ParameterValue, 'Revert exactly what `arm` did (byte for byte where the file was not touched since)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show, per target, whether it is armed, with which mirrors, and any drift')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a pull-through cache (one content-addressed store, one upstream fetch per blob)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Prove that pulls go through the mirror and that the mirror serves them from its cache')
            [CompletionResult]::new('warm', 'warm', [CompletionResultType]::ParameterValue, 'Pull images through a mirror so its cache holds them before a rebuild storm')
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Print what `arm` would write into an empty root, or dockerd''s flags, for images and pod templates')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mirrorctl;help;arm' {
            break
        }
        'mirrorctl;help;disarm' {
            break
        }
        'mirrorctl;help;status' {
            break
        }
        'mirrorctl;help;serve' {
            break
        }
        'mirrorctl;help;verify' {
            break
        }
        'mirrorctl;help;warm' {
            break
        }
        'mirrorctl;help;render' {
            break
        }
        'mirrorctl;help;completions' {
            break
        }
        'mirrorctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
