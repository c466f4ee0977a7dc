
use builtin;
use str;

set edit:completion:arg-completer[mirrorctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'mirrorctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'mirrorctl'= {
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand arm 'Point client configs at one or more mirrors (idempotent; shows a diff)'
            cand disarm 'Revert exactly what `arm` did (byte for byte where the file was not touched since)'
            cand status 'Show, per target, whether it is armed, with which mirrors, and any drift'
            cand serve 'Run a pull-through cache (one content-addressed store, one upstream fetch per blob)'
            cand verify 'Prove that pulls go through the mirror and that the mirror serves them from its cache'
            cand warm 'Pull images through a mirror so its cache holds them before a rebuild storm'
            cand render 'Print what `arm` would write into an empty root, or dockerd''s flags, for images and pod templates'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mirrorctl;arm'= {
            cand --mirror 'Mirror URL, scheme required (`https://host/<project>` for a Harbor proxy-cache project); `REGISTRY=URL` mirrors another registry (repeatable, order kept)'
            cand --registry 'Registry that `--mirror` values without `REGISTRY=` apply to'
            cand --target 'Targets to configure, comma-separated or repeated [default: every target found under --root]'
            cand --earthly-config 'Earthly''s config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]'
            cand --dockerd-version 'Plan the docker target for this dockerd version (also `MIRRORCTL_DOCKERD_VERSION`) instead of asking the root''s `dockerd --version` (28 and later also get /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io)'
            cand --containerd-version 'Plan the containerd target for this containerd version (also `MIRRORCTL_CONTAINERD_VERSION`) instead of asking the root''s `containerd --version` (decides dial_timeout, `_default` for a migrated `*` mirror, the config_path-list warning)'
            cand --dial-timeout 'containerd''s `dial_timeout` for each mirror host (containerd 2.1+ and 2.0.7+ only; never written for older or unknown versions): how long a dead mirror delays the fallback; 0 to leave it out'
            cand --preflight-timeout 'How long preflight waits for each mirror'
            cand --image 'The probe image for --verify'
            cand --probe-timeout 'With --verify: how long each client''s pull may take'
            cand --lock-timeout 'How long to wait for another mirrorctl run to release the lock (seconds, or `30s`, `2m`)'
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand --insecure 'Skip TLS verification for https mirrors (http mirrors are always marked insecure)'
            cand --migrate 'Convert legacy configs arm otherwise refuses: containerd''s deprecated CRI `registry.mirrors` / `configs.<host>.tls` into hosts.toml, and `version = 2` for a versionless config.toml whose CRI tables use the long plugin id; disarm puts them back'
            cand --no-preflight 'Do not ask each mirror `GET /v2/` before writing (for images built before the mirror runs; also MIRRORCTL_NO_PREFLIGHT=1)'
            cand --allow-auth-mirror 'Arm dockerd for a mirror that needs credentials (dockerd sends it only its docker.io credentials)'
            cand --verify 'After writing and reloading (implies --reload), pull --image with each armed target''s real client through the mirror; roll this run back when one fails'
            cand --block-upstream 'With --verify: map the upstream''s host names to 0.0.0.0 in <root>/etc/hosts while the clients pull'
            cand --dry-run 'Show what would change; write nothing, not even state'
            cand --reload 'Reload or restart the daemons whose config changed (dockerd: SIGHUP; others: systemctl)'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mirrorctl;disarm'= {
            cand --target 'Targets to revert, comma-separated or repeated [default: every armed target]'
            cand --lock-timeout 'How long to wait for another mirrorctl run to release the lock (seconds, or `30s`, `2m`)'
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand --dry-run 'Show what would change; write nothing, not even state'
            cand --reload 'Reload or restart the daemons whose config changed (dockerd: SIGHUP; others: systemctl)'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mirrorctl;status'= {
            cand --probe-timeout 'How long each mirror may take to answer'
            cand --earthly-config 'Earthly''s config file [default: EARTHLY_CONFIG, else ~/.earthly/config.yml of SUDO_USER, else of HOME]'
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand --json 'Print one JSON document on stdout instead of text'
            cand --no-probe 'Do not ask each armed mirror `GET /v2/` (by default every one is asked, with a short deadline)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'mirrorctl;serve'= {
            cand --listen 'Address to listen on; `:0` picks a free port (the bound address is the first line on stdout)'
            cand --upstream 'Upstream registry URL (`https://host/<project>` fetches from a Harbor project''s `/v2/<project>/…`); `REGISTRY=URL` adds one chosen by containerd''s `?ns=REGISTRY` (repeatable) [default: https://registry-1.docker.io for docker.io]'
            cand --cache-dir 'Cache directory [default: <state dir>/cache]'
            cand --max-size 'Evict least recently used blobs above this size (K, M, G, T = powers of 1024)'
            cand --tag-ttl 'How long a tag''s digest is trusted before revalidating upstream with HEAD (s, m, h, d)'
            cand --upstream-username 'User name for the default upstream'
            cand --upstream-password-file 'File holding the default upstream''s password (never logged)'
            cand --htpasswd 'Require client Basic auth against this htpasswd file (bcrypt entries)'
            cand --tls-cert 'Serve HTTPS with this certificate chain (PEM)'
            cand --tls-key 'Private key for --tls-cert (PEM)'
            cand --ratelimit-warn 'Warn when an upstream''s reported pull budget (Docker Hub''s `ratelimit-remaining`) falls below N; 0 never warns'
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand --json-log 'Access log as JSON lines on stderr (default: combined log format)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'mirrorctl;verify'= {
            cand --mirror 'The mirror to verify, scheme required (`http://host:port`, `https://host`, `https://host/<project>`; a `/v2/` path and `user:password@` are accepted)'
            cand --upstream 'Upstream of the --embedded server (`https://host/<project>` for a Harbor project) [default: the image''s registry, https://registry-1.docker.io for docker.io]'
            cand --image 'The probe image, pulled twice through the mirror'
            cand --platform 'Platform to pick from a multi-platform image [default: this host''s]'
            cand --timeout 'How long to wait for a connection and for each read (seconds, or `30s`, `2m`)'
            cand --username 'User name for the mirror (default: the docker config''s credential helper or auths, else anonymous)'
            cand --ca-cert 'Also trust this CA certificate file (PEM) for an https mirror'
            cand --hosts-file 'Hosts file for --block-upstream and --cleanup [default: <root>/etc/hosts]'
            cand --client 'Also pull the probe with this real client, after pull #2 and while the upstream is blocked (repeatable)'
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand --embedded 'Verify an in-process `mirrorctl serve` (free loopback port, temporary cache, all removed afterwards) instead of --mirror'
            cand --json 'Print one JSON document on stdout instead of text'
            cand --password-stdin 'Read the password for --username from stdin'
            cand --block-upstream 'Map the upstream registry''s host names to 0.0.0.0 and :: in the hosts file during pull #2'
            cand --cleanup 'Remove a hosts block left by an interrupted `verify --block-upstream`, then exit'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mirrorctl;warm'= {
            cand --mirror 'The mirror to fill, scheme required (`http://host:port`, `https://host`; `user:password@` accepted)'
            cand --from-file 'Also warm the images listed in this file, one reference a line (`#` comments)'
            cand --from-dockerfile 'Also warm the images of this Dockerfile''s FROM lines (ARG defaults substituted, stage names skipped)'
            cand --platform 'Platforms to warm from a multi-platform image, comma-separated (`linux/amd64,linux/arm64`) [default: every platform of the index]'
            cand --jobs 'Downloads at once'
            cand --timeout 'How long to wait for a connection and for each read (seconds, or `30s`, `2m`)'
            cand --username 'User name for the mirror (default: the docker config''s credential helper or auths, else anonymous)'
            cand --ca-cert 'Also trust this CA certificate file (PEM) for an https mirror'
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand --json 'Print one JSON document on stdout instead of text'
            cand --password-stdin 'Read the password for --username from stdin'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'mirrorctl;render'= {
            cand --mirror 'Mirror URL, scheme required (`https://host/<project>` for a Harbor proxy-cache project); `REGISTRY=URL` mirrors another registry (repeatable, order kept)'
            cand --registry 'Registry that `--mirror` values without `REGISTRY=` apply to'
            cand --for 'hosts.toml: the registry whose file to print [default: the only registry the mirrors are for]'
            cand --dockerd-version 'dockerd-args, daemon.json: the dockerd they are for (also `MIRRORCTL_DOCKERD_VERSION`); 28 and later read /etc/docker/certs.d/<host>/hosts.toml for registries other than docker.io'
            cand -o 'Write the text to FILE (atomically; missing parent directories are created) instead of stdout'
            cand --output 'Write the text to FILE (atomically; missing parent directories are created) instead of stdout'
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand --insecure 'Skip TLS verification for https mirrors (http mirrors are always marked insecure)'
            cand --json 'dockerd-args: one JSON array of strings, for a container''s `args`'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'mirrorctl;completions'= {
            cand --root 'Prefix for every system path (/etc/..., /var/lib/mirrorctl, /var/run/docker.pid)'
            cand --state-dir 'Where the journal and lock live [default: <root>/var/lib/mirrorctl as root, else the XDG state dir]'
            cand --color 'When to color output (NO_COLOR is honoured)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Print more detail (repeat for more)'
            cand --verbose 'Print more detail (repeat for more)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'mirrorctl;help'= {
            cand arm 'Point client configs at one or more mirrors (idempotent; shows a diff)'
            cand disarm 'Revert exactly what `arm` did (byte for byte where the file was not touched since)'
            cand status 'Show, per target, whether it is armed, with which mirrors, and any drift'
            cand serve 'Run a pull-through cache (one content-addressed store, one upstream fetch per blob)'
            cand verify 'Prove that pulls go through the mirror and that the mirror serves them from its cache'
            cand warm 'Pull images through a mirror so its cache holds them before a rebuild storm'
            cand render 'Print what `arm` would write into an empty root, or dockerd''s flags, for images and pod templates'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mirrorctl;help;arm'= {
        }
        &'mirrorctl;help;disarm'= {
        }
        &'mirrorctl;help;status'= {
        }
        &'mirrorctl;help;serve'= {
        }
        &'mirrorctl;help;verify'= {
        }
        &'mirrorctl;help;warm'= {
        }
        &'mirrorctl;help;render'= {
        }
        &'mirrorctl;help;completions'= {
        }
        &'mirrorctl;help;help'= {
        }
    ]
    $completions[$command]
}
