//! `mirrorctl render`: each format's exact text, the proof that it is what `arm` writes into an
//! empty root (the same planners, not a second copy of the rules), its usage errors, `--json`
//! against its schema, `--output`, and that it reads and writes nothing else on the machine.
//! Then the real client: a private dockerd started with the rendered `dockerd-args` and,
//! separately, with the rendered `daemon.json` (mounted as its config file next to the `-H`
//! flag, like docker:dind) pulls and builds through a plain-HTTP mirror on a LAN address with
//! Docker Hub unreachable, proven by the mirror's access log.

use crate::common::dockerd::{write_from_dockerfile, Dockerd};
use crate::common::image::PROBE;
use crate::common::proof::{assert_through_mirror, UA_CONTAINERD, UA_DOCKERD};
use crate::common::{self, mirrorctl, mirrorctl_cmd, run, snapshot, AccessLogged, Out, Workspace};
use crate::json_schema::check;
use crate::lan_mirror::{forward, in_private_netns_for, LAN_IP};
use std::path::Path;

/// `mirrorctl render <args>` with nothing of a machine: no `--root`, no state dir.
fn render(args: &[&str]) -> Out {
    run(mirrorctl_cmd().arg("render").args(args))
}

const MIRRORS: [&str; 6] = [
    "--mirror",
    "http://10.0.0.5:5000",
    "--mirror",
    "https://mirror.example",
    "--mirror",
    "quay.io=http://10.0.0.5:5001",
];

fn with_mirrors<'a>(format: &'a [&'a str]) -> Vec<&'a str> {
    format.iter().chain(MIRRORS.iter()).copied().collect()
}

/// The exact text of every format for one mirror set (two docker.io mirrors, one plain HTTP,
/// and a quay.io one): what an image build or a golden config repository gets.
#[test]
fn each_format_prints_its_file() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["dockerd-args"],
            "--registry-mirror=http://10.0.0.5:5000\n--registry-mirror=https://mirror.example\n\
             --insecure-registry=http://10.0.0.5:5000\n",
        ),
        (
            &["daemon.json"],
            "{\n  \"registry-mirrors\": [\n    \"http://10.0.0.5:5000\",\n    \"https://mirror.example\"\n  ],\n  \
             \"insecure-registries\": [\n    \"http://10.0.0.5:5000\"\n  ]\n}\n",
        ),
        (
            &["hosts.toml", "--for", "docker.io"],
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://10.0.0.5:5000\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n\n[host.\"https://mirror.example\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n",
        ),
        (
            &["hosts.toml", "--for", "quay.io"],
            "server = \"https://quay.io\"\n\n[host.\"http://10.0.0.5:5001\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n",
        ),
        (
            &["buildkitd.toml"],
            "[registry.\"docker.io\"]\n  mirrors = [\"10.0.0.5:5000\", \"mirror.example\"]\n\n\
             [registry.\"quay.io\"]\n  mirrors = [\"10.0.0.5:5001\"]\n\n\
             [registry.\"10.0.0.5:5000\"]\n  http = true\n\n[registry.\"10.0.0.5:5001\"]\n  http = true\n",
        ),
        (
            &["registries.conf"],
            "# Written by mirrorctl (`mirrorctl disarm` removes it). A [[registry]] here replaces the\n\
             # table with the same prefix in registries.conf and earlier drop-ins, so their settings and\n\
             # mirrors are copied below, after mirrorctl's.\n\n\
             [[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n\
             [[registry.mirror]]\nlocation = \"10.0.0.5:5000\"\ninsecure = true\n\n\
             [[registry.mirror]]\nlocation = \"mirror.example\"\n\n\
             [[registry]]\nprefix = \"quay.io\"\nlocation = \"quay.io\"\n\n\
             [[registry.mirror]]\nlocation = \"10.0.0.5:5001\"\ninsecure = true\n",
        ),
        (
            &["registries.yaml"],
            "mirrors:\n  \"docker.io\":\n    endpoint:\n      - \"http://10.0.0.5:5000\"\n      \
             - \"https://mirror.example\"\n  \"quay.io\":\n    endpoint:\n      - \"http://10.0.0.5:5001\"\n",
        ),
    ];
    for (format, want) in cases {
        let out = render(&with_mirrors(format));
        assert_eq!(out.code(), Some(0), "{out}");
        assert_eq!(out.stdout, want, "{format:?}:\n{out}");
    }
    // Where each file goes is said on stderr, never mixed into the text.
    let out = render(&with_mirrors(&["daemon.json"]));
    assert!(
        out.stderr.contains("mount it at /etc/docker/daemon.json"),
        "{out}"
    );
    assert!(
        out.stderr.contains("quay.io not configured for dockerd"),
        "{out}"
    );
    let out = render(&with_mirrors(&["hosts.toml", "--for", "quay.io"]));
    assert!(
        out.stderr
            .contains("/etc/containerd/certs.d/quay.io/hosts.toml")
            && out
                .stderr
                .contains("/etc/docker/certs.d/quay.io/hosts.toml"),
        "{out}"
    );
    // -q: the text alone.
    let out = run(mirrorctl_cmd()
        .args(["-q", "render"])
        .args(with_mirrors(&["daemon.json"])));
    assert!(out.ok() && out.stderr.is_empty(), "{out}");
    // --insecure: https mirrors are insecure too, with their scheme (what arm writes).
    let out = render(&[
        "dockerd-args",
        "--insecure",
        "--mirror",
        "https://m.example",
    ]);
    assert_eq!(
        out.stdout, "--registry-mirror=https://m.example\n--insecure-registry=https://m.example\n",
        "{out}"
    );
}

/// The daemon.json keys written as dockerd's flags, as the test reads dockerd's flag table
/// (`--registry-mirror` is `registry-mirrors`' flag, `--insecure-registry`
/// `insecure-registries`').
fn as_flags(daemon_json: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(daemon_json).unwrap();
    let mut out = Vec::new();
    for (key, flag) in [
        ("registry-mirrors", "--registry-mirror"),
        ("insecure-registries", "--insecure-registry"),
    ] {
        for v in doc[key].as_array().into_iter().flatten() {
            out.push(format!("{flag}={}", v.as_str().unwrap()));
        }
    }
    out
}

/// For several mirror sets, every format is byte for byte the file `arm --target T` writes into
/// an empty root (and dockerd-args its daemon.json's lists), so render can only drift from arm
/// by going through other code, which this would catch.
#[test]
fn each_format_is_what_arm_writes_into_an_empty_root() {
    let sets: [&[&str]; 4] = [
        &["--mirror", "http://127.0.0.1:5000"],
        &MIRRORS,
        &[
            "--mirror",
            "https://m.example:8443",
            "--mirror",
            "http://[::1]:5000",
            "--insecure",
        ],
        &[
            "--registry",
            "ghcr.io",
            "--mirror",
            "HTTP://Mirror.Example:5000/",
            "--mirror",
            "docker.io=https://hub.example",
        ],
    ];
    for set in sets {
        let ws = Workspace::new("render-vs-arm");
        let out = run(mirrorctl(&ws)
            .args(["arm", "--dockerd-version", "20.10"])
            .args(["--target", "docker,buildkit,containerd,registries,k3s"])
            .args(set));
        assert_eq!(out.code(), Some(0), "{out}");
        let armed = |rel: &str| std::fs::read_to_string(ws.under_root(rel)).unwrap();
        let same = |format: &[&str], file: &str| {
            let out = render(&[format, set].concat());
            assert_eq!(out.code(), Some(0), "{out}");
            assert_eq!(out.stdout, armed(file), "{format:?} {set:?}: {out}");
        };
        same(&["daemon.json"], "etc/docker/daemon.json");
        same(&["buildkitd.toml"], "etc/buildkit/buildkitd.toml");
        same(
            &["registries.conf"],
            "etc/containers/registries.conf.d/90-mirrorctl.conf",
        );
        same(&["registries.yaml"], "etc/rancher/k3s/registries.yaml");
        let registries = std::fs::read_dir(ws.under_root("etc/containerd/certs.d")).unwrap();
        for r in registries {
            let name = r.unwrap().file_name().into_string().unwrap();
            same(
                &["hosts.toml", "--for", &name],
                &format!("etc/containerd/certs.d/{name}/hosts.toml"),
            );
        }
        let out = render(&[&["dockerd-args"], set].concat());
        let want = as_flags(&armed("etc/docker/daemon.json"));
        assert_eq!(
            out.stdout,
            format!("{}\n", want.join("\n")),
            "{set:?}: {out}"
        );
        let out = render(&[&["dockerd-args", "--json"], set].concat());
        let doc = check("render-dockerd-args", &out);
        assert_eq!(doc, serde_json::json!(want), "{out}");
    }
    // dockerd ≥ 28 gets other registries through certs.d: the same hosts.toml, and the note
    // says where it goes.
    let ws = Workspace::new("render-vs-arm-28");
    ws.run(
        &[
            &["arm", "--dockerd-version", "28.1", "--target", "docker"][..],
            &MIRRORS,
        ]
        .concat(),
    )
    .assert_ok();
    let out = render(&[&["daemon.json", "--dockerd-version", "28.1"][..], &MIRRORS].concat());
    assert!(
        out.stderr.contains(
            "quay.io: mount `mirrorctl render hosts.toml --for quay.io` at /etc/docker/certs.d/quay.io/hosts.toml"
        ),
        "{out}"
    );
    let out = render(&with_mirrors(&["hosts.toml", "--for", "quay.io"]));
    assert_eq!(
        out.stdout,
        std::fs::read_to_string(ws.under_root("etc/docker/certs.d/quay.io/hosts.toml")).unwrap()
    );
}

/// Bad input is exit 2 with one clear sentence (and with `--json` the error document), never
/// a panic; the mirror flags are arm's, validated by arm's parser.
#[test]
fn bad_input_is_a_usage_error() {
    let cases: [(&[&str], &str); 10] = [
        (
            &["dockerd-args", "--mirror", "10.0.0.5:5000"],
            "has no scheme",
        ),
        (
            &["dockerd-args", "--mirror", "http://u:p@m"],
            "contains credentials",
        ),
        (
            &["dockerd-args", "--mirror", "http://m/v2/"],
            "ends in `/v2`",
        ),
        (&["dockerd-args"], "--mirror"),
        (
            &["docker.json", "--mirror", "http://m"],
            "invalid value 'docker.json'",
        ),
        (
            &[
                "hosts.toml",
                "--mirror",
                "http://a",
                "--mirror",
                "quay.io=http://b",
            ],
            "pick it with --for REGISTRY",
        ),
        (
            &["hosts.toml", "--mirror", "http://a", "--for", "quay.io"],
            "no --mirror is for quay.io",
        ),
        (
            &["daemon.json", "--mirror", "quay.io=http://b"],
            "quay.io not configured for dockerd",
        ),
        (
            &["daemon.json", "--mirror", "http://a", "--for", "docker.io"],
            "--for picks the registry of a hosts.toml",
        ),
        (
            &[
                "daemon.json",
                "--mirror",
                "http://a",
                "--dockerd-version",
                "new",
            ],
            "is not a version",
        ),
    ];
    for (args, want) in cases {
        let out = render(args);
        assert_eq!(out.code(), Some(2), "{args:?}: {out}");
        assert!(out.stderr.contains(want), "{args:?}: want {want:?}: {out}");
        assert!(
            out.stdout.is_empty() && !out.stderr.contains("panicked"),
            "{out}"
        );
        let out = render(&[args, &["--json"]].concat());
        assert_eq!(out.code(), Some(2), "{args:?}: {out}");
        check("error", &out);
    }
    // --json is dockerd-args' only.
    let out = render(&["daemon.json", "--json", "--mirror", "http://a"]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(check("error", &out)["error"]
        .as_str()
        .unwrap()
        .contains("--json is for dockerd-args"));
    // With dockerd ≥ 28 the hint names the hosts.toml for the other registry.
    let out = render(&[
        "daemon.json",
        "--mirror",
        "quay.io=http://b",
        "--dockerd-version",
        "28",
    ]);
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("hint:") && out.stderr.contains("render hosts.toml --for"),
        "{out}"
    );
    // MIRRORCTL_DOCKERD_VERSION is read like arm reads it.
    let out = run(mirrorctl_cmd().env("MIRRORCTL_DOCKERD_VERSION", "x").args([
        "render",
        "daemon.json",
        "--mirror",
        "http://a",
    ]));
    assert_eq!(out.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("MIRRORCTL_DOCKERD_VERSION `x`"),
        "{out}"
    );
}

/// `--output` writes the file atomically (its directories created, an existing file's mode
/// kept), prints nothing on stdout, and render touches nothing else: not `--root`, not the
/// state dir, not a stale hosts block other commands sweep.
#[test]
fn output_writes_the_file_and_nothing_else() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new("render-out");
    let hosts = ws.write("etc/hosts", "127.0.0.1 localhost\n# BEGIN mirrorctl verify pid=999999999\n0.0.0.0 registry-1.docker.io\n# END mirrorctl verify\n");
    let before = snapshot(&ws.root());
    let dest = ws.aux("out").join("certs.d/quay.io/hosts.toml");
    let args = with_mirrors(&["hosts.toml", "--for", "quay.io"]);
    let out = run(mirrorctl(&ws)
        .arg("render")
        .args(&args)
        .arg("--output")
        .arg(&dest));
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr.contains(&format!("wrote {}", dest.display())),
        "{out}"
    );
    let printed = render(&with_mirrors(&["hosts.toml", "--for", "quay.io"])).stdout;
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), printed);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dest), 0o644);
    assert_eq!(mode(dest.parent().unwrap()), 0o755);
    // Over an existing file: replaced, its mode kept, no temp file left.
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(mirrorctl_cmd()
        .args([
            "render",
            "dockerd-args",
            "--json",
            "--mirror",
            "http://a:1",
            "--output",
        ])
        .arg(&dest));
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "[\"--registry-mirror=http://a:1\",\"--insecure-registry=http://a:1\"]\n"
    );
    assert_eq!(mode(&dest), 0o600);
    let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["hosts.toml"]);
    // The root is as it was (the stale hosts block too) and no state dir appeared.
    assert_eq!(snapshot(&ws.root()), before);
    assert!(std::fs::read_to_string(&hosts)
        .unwrap()
        .contains("BEGIN mirrorctl verify"));
    assert!(!ws.state_dir().exists());
    // An output that cannot be written is exit 1, naming it.
    let out = run(mirrorctl_cmd()
        .args(["render", "daemon.json", "--mirror", "http://a", "--output"])
        .arg(hosts.join("x")));
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("etc/hosts"), "{out}");
}

/// The real client: dockerd started with the rendered flags (as docker:dind's `args`), and a
/// fresh dockerd started with the rendered daemon.json as its config file next to the `-H` flag
/// (as dind's entrypoint passes it), each pull and build (its built-in BuildKit) through a
/// plain-HTTP mirror on a LAN address with Docker Hub unreachable: the access log shows each
/// client. The LAN address matters: on loopback every client speaks plain HTTP by itself, on
/// 10.77.0.1 dockerd's BuildKit does only because `--insecure-registry` / insecure-registries
/// gives the mirror with its `http://` scheme (the control: with a bare `host:port` it fails).
/// Both at once make dockerd refuse to start, as the note says.
#[test]
fn dockerd_pulls_through_the_mirror_with_rendered_args_and_with_rendered_daemon_json() {
    const TEST: &str =
        "dockerd_pulls_through_the_mirror_with_rendered_args_and_with_rendered_daemon_json";
    if !common::require(&[
        "docker-registry",
        "skopeo",
        "unshare",
        "ip",
        "dockerd",
        "docker",
        "containerd",
    ]) {
        return;
    }
    if !in_private_netns_for(module_path!(), TEST) {
        return;
    }
    let ws = Workspace::new("render-dind");
    let lab = common::Lab::start(&ws);
    let port = forward(lab.mirror.host());
    let mirror = format!("http://{LAN_IP}:{port}");
    let image = format!("{PROBE}:latest");
    let build_ctx = write_from_dockerfile(&ws.aux("build"), &image);
    let pull_and_build = |d: &Dockerd, what: &str| {
        let mark = lab.mirror.log_mark();
        assert_through_mirror(&d.pull(&image, &[]), &lab.mirror, mark, UA_DOCKERD, what);
        let mark = lab.mirror.log_mark();
        let out = d.build(&build_ctx, "local/render-probe:1");
        assert_through_mirror(
            &out,
            &lab.mirror,
            mark,
            UA_CONTAINERD,
            &format!("{what}: docker build"),
        );
    };

    // 1. The flags, with an empty config file.
    let out = render(&["dockerd-args", "--json", "--mirror", &mirror]);
    let args: Vec<String> = serde_json::from_value(check("render-dockerd-args", &out)).unwrap();
    assert_eq!(
        args,
        [
            format!("--registry-mirror={mirror}"),
            format!("--insecure-registry={mirror}")
        ]
    );
    let daemon_json = ws.write("etc/docker/daemon.json", "{}\n");
    // The control: the same flags with the bare `host:port` dockerd's docs show for
    // --insecure-registry. BuildKit then tries HTTPS, so what makes it work below is the
    // rendered entry's scheme.
    let bare = [
        args[0].clone(),
        format!("--insecure-registry={LAN_IP}:{port}"),
    ];
    let mut dockerd = Dockerd::try_start_with(&ws.root(), &ws.aux("dockerd-bare"), &bare)
        .unwrap_or_else(|e| panic!("dockerd with {bare:?}: {e}"));
    let out = dockerd.build(&build_ctx, "local/render-probe:0");
    assert!(
        !out.ok()
            && out
                .combined()
                .contains("server gave HTTP response to HTTPS client"),
        "{out}"
    );
    dockerd.stop();
    drop(dockerd);
    let mut dockerd = Dockerd::try_start_with(&ws.root(), &ws.aux("dockerd-args"), &args)
        .unwrap_or_else(|e| panic!("dockerd with {args:?}: {e}"));
    assert_eq!(dockerd.mirrors(), [format!("{mirror}/")]);
    pull_and_build(&dockerd, "dockerd-args");
    dockerd.stop();
    drop(dockerd);

    // 2. The daemon.json, written with --output where dockerd reads it; a fresh store.
    let out = run(mirrorctl_cmd()
        .args(["render", "daemon.json", "--mirror", &mirror, "--output"])
        .arg(&daemon_json));
    assert_eq!(out.code(), Some(0), "{out}");
    let dockerd = Dockerd::try_start(&ws.root(), &ws.aux("dockerd-json"))
        .unwrap_or_else(|e| panic!("dockerd with the rendered daemon.json: {e}"));
    assert_eq!(dockerd.mirrors(), [format!("{mirror}/")]);
    pull_and_build(&dockerd, "daemon.json");
    drop(dockerd);

    // 3. Both: dockerd refuses to start, naming the setting.
    let e = match Dockerd::try_start_with(&ws.root(), &ws.aux("dockerd-both"), &args) {
        Ok(_) => panic!("dockerd started with the flags and the same keys in daemon.json"),
        Err(e) => e,
    };
    assert!(
        e.contains(
            "the following directives are specified both as a flag and in the configuration file"
        ),
        "{e}"
    );
}
