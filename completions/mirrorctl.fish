# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mirrorctl_global_optspecs
    string join \n root= state-dir= color= q/quiet v/verbose h/help V/version
end

function __fish_mirrorctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mirrorctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mirrorctl_using_subcommand
    set -l cmd (__fish_mirrorctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -s V -l version -d 'Print version'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "arm" -d 'Point client configs at one or more mirrors (idempotent; shows a diff)'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "disarm" -d 'Revert exactly what `arm` did (byte for byte where the file was not touched since)'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "status" -d 'Show, per target, whether it is armed, with which mirrors, and any drift'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "serve" -d 'Run a pull-through cache (one content-addressed store, one upstream fetch per blob)'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "verify" -d 'Prove that pulls go through the mirror and that the mirror serves them from its cache'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "warm" -d 'Pull images through a mirror so its cache holds them before a rebuild storm'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "render" -d 'Print what `arm` would write into an empty root, or dockerd\'s flags, for images and pod templates'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c mirrorctl -n "__fish_mirrorctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l mirror -d 'Mirror URL, scheme required (`https://host/<project>` for a Harbor proxy-cache project); `REGISTRY=URL` mirrors another registry (repeatable, order kept)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l registry -d 'Registry that `--mirror` values without `REGISTRY=` apply to' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l target -d 'Targets to configure, comma-separated or repeated [default: every target found under --root]' -r -f -a "docker\t'dockerd: /etc/docker/daemon.json (docker.io only)'
buildkit\t'BuildKit: /etc/buildkit/buildkitd.toml'
containerd\t'containerd: /etc/containerd/certs.d/<registry>/hosts.toml and config.toml config_path'
registries\t'podman, CRI-O, skopeo, buildah: /etc/containers/registries.conf.d/90-mirrorctl.conf'
k3s\t'k3s / rke2: /etc/rancher/{k3s,rke2}/registries.yaml'
earthly\t'Earthly: ~/.earthly/config.yml, global.buildkit_additional_config (its earthly-buildkitd)'
buildx\t'docker buildx: ~/.docker/buildx/buildkitd.default.toml (new builders; existing ones are re-created)'"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l earthly-config -d 'Earthly\'s config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l dockerd-version -d 'Plan the docker target for this dockerd version (also `MIRRORCTL_DOCKERD_VERSION`) instead of asking the root\'s `dockerd --version` (28 and later also get /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l containerd-version -d 'Plan the containerd target for this containerd version (also `MIRRORCTL_CONTAINERD_VERSION`) instead of asking the root\'s `containerd --version` (decides dial_timeout, `_default` for a migrated `*` mirror, the config_path-list warning)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l dial-timeout -d 'containerd\'s `dial_timeout` for each mirror host (containerd 2.1+ and 2.0.7+ only; never written for older or unknown versions): how long a dead mirror delays the fallback; 0 to leave it out' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l preflight-timeout -d 'How long preflight waits for each mirror' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l image -d 'The probe image for --verify' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l probe-timeout -d 'With --verify: how long each client\'s pull may take' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l lock-timeout -d 'How long to wait for another mirrorctl run to release the lock (seconds, or `30s`, `2m`)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l insecure -d 'Skip TLS verification for https mirrors (http mirrors are always marked insecure)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l migrate -d 'Convert legacy configs arm otherwise refuses: containerd\'s deprecated CRI `registry.mirrors` / `configs.<host>.tls` into hosts.toml, and `version = 2` for a versionless config.toml whose CRI tables use the long plugin id; disarm puts them back'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l no-preflight -d 'Do not ask each mirror `GET /v2/` before writing (for images built before the mirror runs; also MIRRORCTL_NO_PREFLIGHT=1)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l allow-auth-mirror -d 'Arm dockerd for a mirror that needs credentials (dockerd sends it only its docker.io credentials)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l verify -d 'After writing and reloading (implies --reload), pull --image with each armed target\'s real client through the mirror; roll this run back when one fails'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l block-upstream -d 'With --verify: map the upstream\'s host names to 0.0.0.0 in <root>/etc/hosts while the clients pull'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l dry-run -d 'Show what would change; write nothing, not even state'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l reload -d 'Reload or restart the daemons whose config changed (dockerd: SIGHUP; others: systemctl)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -l json -d 'Print one JSON document on stdout instead of text'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand arm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l target -d 'Targets to revert, comma-separated or repeated [default: every armed target]' -r -f -a "docker\t'dockerd: /etc/docker/daemon.json (docker.io only)'
buildkit\t'BuildKit: /etc/buildkit/buildkitd.toml'
containerd\t'containerd: /etc/containerd/certs.d/<registry>/hosts.toml and config.toml config_path'
registries\t'podman, CRI-O, skopeo, buildah: /etc/containers/registries.conf.d/90-mirrorctl.conf'
k3s\t'k3s / rke2: /etc/rancher/{k3s,rke2}/registries.yaml'
earthly\t'Earthly: ~/.earthly/config.yml, global.buildkit_additional_config (its earthly-buildkitd)'
buildx\t'docker buildx: ~/.docker/buildx/buildkitd.default.toml (new builders; existing ones are re-created)'"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l lock-timeout -d 'How long to wait for another mirrorctl run to release the lock (seconds, or `30s`, `2m`)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l dry-run -d 'Show what would change; write nothing, not even state'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l reload -d 'Reload or restart the daemons whose config changed (dockerd: SIGHUP; others: systemctl)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -l json -d 'Print one JSON document on stdout instead of text'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand disarm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -l probe-timeout -d 'How long each mirror may take to answer' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -l earthly-config -d 'Earthly\'s config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -l json -d 'Print one JSON document on stdout instead of text'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -l no-probe -d 'Do not ask each armed mirror `GET /v2/` (by default every one is asked, with a short deadline)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l listen -d 'Address to listen on; `:0` picks a free port (the bound address is the first line on stdout)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l upstream -d 'Upstream registry URL (`https://host/<project>` fetches from a Harbor project\'s `/v2/<project>/…`); `REGISTRY=URL` adds one chosen by containerd\'s `?ns=REGISTRY` (repeatable) [default: https://registry-1.docker.io for docker.io]' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l cache-dir -d 'Cache directory [default: <state dir>/cache]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l max-size -d 'Evict least recently used blobs above this size (K, M, G, T = powers of 1024)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l tag-ttl -d 'How long a tag\'s digest is trusted before revalidating upstream with HEAD (s, m, h, d)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l upstream-username -d 'User name for the default upstream' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l upstream-password-file -d 'File holding the default upstream\'s password (never logged)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l htpasswd -d 'Require client Basic auth against this htpasswd file (bcrypt entries)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l tls-cert -d 'Serve HTTPS with this certificate chain (PEM)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l tls-key -d 'Private key for --tls-cert (PEM)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l ratelimit-warn -d 'Warn when an upstream\'s reported pull budget (Docker Hub\'s `ratelimit-remaining`) falls below N; 0 never warns' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -l json-log -d 'Access log as JSON lines on stderr (default: combined log format)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand serve" -s h -l help -d 'Print help'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l mirror -d 'The mirror to verify, scheme required (`http://host:port`, `https://host`, `https://host/<project>`; a `/v2/` path and `user:password@` are accepted)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l upstream -d 'Upstream of the --embedded server (`https://host/<project>` for a Harbor project) [default: the image\'s registry, https://registry-1.docker.io for docker.io]' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l image -d 'The probe image, pulled twice through the mirror' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l platform -d 'Platform to pick from a multi-platform image [default: this host\'s]' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l timeout -d 'How long to wait for a connection and for each read (seconds, or `30s`, `2m`)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l username -d 'User name for the mirror (default: the docker config\'s credential helper or auths, else anonymous)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l ca-cert -d 'Also trust this CA certificate file (PEM) for an https mirror' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l hosts-file -d 'Hosts file for --block-upstream and --cleanup [default: <root>/etc/hosts]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l client -d 'Also pull the probe with this real client, after pull #2 and while the upstream is blocked (repeatable)' -r -f -a "docker\t'dockerd via the docker CLI (`DOCKER_HOST`, else `<root>/var/run/docker.sock` under a --root)'
containerd\t'containerd via `ctr content fetch --hosts-dir <root>/etc/containerd/certs.d` (`CONTAINERD_ADDRESS`)'
buildkit\t'dockerd\'s built-in BuildKit: `DOCKER_BUILDKIT=1 docker build --pull` of `FROM <image>`'
podman\t'`podman pull` with registries.conf and its drop-ins in effect'
skopeo\t'`skopeo copy docker://<image> dir:<tmp>` with registries.conf and its drop-ins in effect'
cri\t'containerd\'s CRI image service (kubelet\'s path, through config.toml\'s config_path): `crictl pull`, else the built-in client (`cri` feature)'"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l embedded -d 'Verify an in-process `mirrorctl serve` (free loopback port, temporary cache, all removed afterwards) instead of --mirror'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l json -d 'Print one JSON document on stdout instead of text'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l password-stdin -d 'Read the password for --username from stdin'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l block-upstream -d 'Map the upstream registry\'s host names to 0.0.0.0 and :: in the hosts file during pull #2'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -l cleanup -d 'Remove a hosts block left by an interrupted `verify --block-upstream`, then exit'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l mirror -d 'The mirror to fill, scheme required (`http://host:port`, `https://host`; `user:password@` accepted)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l from-file -d 'Also warm the images listed in this file, one reference a line (`#` comments)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l from-dockerfile -d 'Also warm the images of this Dockerfile\'s FROM lines (ARG defaults substituted, stage names skipped)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l platform -d 'Platforms to warm from a multi-platform image, comma-separated (`linux/amd64,linux/arm64`) [default: every platform of the index]' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l jobs -d 'Downloads at once' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l timeout -d 'How long to wait for a connection and for each read (seconds, or `30s`, `2m`)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l username -d 'User name for the mirror (default: the docker config\'s credential helper or auths, else anonymous)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l ca-cert -d 'Also trust this CA certificate file (PEM) for an https mirror' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l json -d 'Print one JSON document on stdout instead of text'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -l password-stdin -d 'Read the password for --username from stdin'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand warm" -s h -l help -d 'Print help'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l mirror -d 'Mirror URL, scheme required (`https://host/<project>` for a Harbor proxy-cache project); `REGISTRY=URL` mirrors another registry (repeatable, order kept)' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l registry -d 'Registry that `--mirror` values without `REGISTRY=` apply to' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l for -d 'hosts.toml: the registry whose file to print [default: the only registry the mirrors are for]' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l dockerd-version -d 'dockerd-args, daemon.json: the dockerd they are for (also `MIRRORCTL_DOCKERD_VERSION`); 28 and later read /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io' -r
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -s o -l output -d 'Write the text to FILE (atomically; missing parent directories are created) instead of stdout' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l insecure -d 'Skip TLS verification for https mirrors (http mirrors are always marked insecure)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -l json -d 'dockerd-args: one JSON array of strings, for a container\'s `args`'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand render" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand completions" -l root -d 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand completions" -l state-dir -d 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]' -r -F
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand completions" -l color -d 'When to color output (NO_COLOR is honoured)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand completions" -s q -l quiet -d 'Print only errors'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand completions" -s v -l verbose -d 'Print more detail (repeat for more)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "arm" -d 'Point client configs at one or more mirrors (idempotent; shows a diff)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "disarm" -d 'Revert exactly what `arm` did (byte for byte where the file was not touched since)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "status" -d 'Show, per target, whether it is armed, with which mirrors, and any drift'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "serve" -d 'Run a pull-through cache (one content-addressed store, one upstream fetch per blob)'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "verify" -d 'Prove that pulls go through the mirror and that the mirror serves them from its cache'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "warm" -d 'Pull images through a mirror so its cache holds them before a rebuild storm'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "render" -d 'Print what `arm` would write into an empty root, or dockerd\'s flags, for images and pod templates'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c mirrorctl -n "__fish_mirrorctl_using_subcommand help; and not __fish_seen_subcommand_from arm disarm status serve verify warm render completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
