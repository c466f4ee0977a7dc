//! End to end for the `registries` target: the drop-in `mirrorctl arm --target registries`
//! writes under `--root` is read by real skopeo 1.9 and podman 4.3 (each in a private mount
//! namespace that sees `<root>/etc/containers` as `/etc/containers`), on loopback, with Docker
//! Hub unreachable (proxy guard). The mirror's access log, with the client's user agent, proves
//! where each pull went.
//!
//! It also proves the reason the planner copies the main file's table: a drop-in `[[registry]]`
//! with the same prefix *replaces* the main file's table, mirrors included (a hand-written
//! drop-in without the copy loses the user's working mirror; mirrorctl's keeps it).

use crate::common::containers::ContainersEnv;
use crate::common::image::PROBE;
use crate::common::proof::{
    assert_not_through_mirror, assert_through_mirror, UA_BUILDAH, UA_PODMAN, UA_SKOPEO,
};
use crate::common::{self, write_file, AccessLogged, Lab, Workspace};

const MAIN: &str = "etc/containers/registries.conf";
const DROPIN: &str = "etc/containers/registries.conf.d/90-mirrorctl.conf";

/// `mirrorctl arm --target registries --mirror <mirror>`, which must succeed.
fn arm(ws: &Workspace, mirror: &str) {
    ws.run(&["arm", "--target", "registries", "--mirror", mirror])
        .assert_ok();
}

/// A main registries.conf whose docker.io table has one mirror (and a setting to copy).
fn main_conf(mirror_host: &str) -> String {
    format!(
        "# the user's own file\nunqualified-search-registries = [\"docker.io\"]\n\n\
         [[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\nblocked = false\n\n\
         [[registry.mirror]]\nlocation = \"{mirror_host}\"\ninsecure = true\n"
    )
}

#[test]
fn skopeo_and_podman_pull_through_the_armed_dropin() {
    if !common::require(&["docker-registry", "skopeo", "podman", "unshare"]) {
        return;
    }
    let ws = Workspace::new("registries");
    let lab = Lab::start(&ws);
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    let dead = format!("127.0.0.1:{}", common::free_port());
    let main = main_conf(&dead);
    write_file(&ws.root().join(MAIN), &main);
    let latest = format!("{PROBE}:latest");

    // Before: the user's only mirror is dead and Docker Hub is unreachable.
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(&latest, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO);

    // Arm: mirrorctl's mirror first, the user's (dead) one copied after it.
    arm(&ws, &lab.mirror.url());
    let dropin = std::fs::read_to_string(ws.root().join(DROPIN)).unwrap();
    let (ours, users) = (
        dropin.find(&format!("\"{}\"", lab.mirror.host())).unwrap(),
        dropin.find(&format!("\"{dead}\"")).unwrap(),
    );
    assert!(ours < users, "{dropin}");
    assert!(dropin.contains("blocked = false"), "{dropin}");

    for tag in ["latest", "multi", "v2s2"] {
        let mark = lab.mirror.log_mark();
        let out = env.skopeo_pull(&format!("{PROBE}:{tag}"), &[]);
        assert_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO, &format!("skopeo {tag}"));
    }
    let mark = lab.mirror.log_mark();
    let out = env.podman_pull(&latest, &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_PODMAN, "podman latest");

    // Disarm: the drop-in is gone, the main file byte-identical, pulls fail again.
    ws.run(&["disarm"]).assert_ok();
    assert!(!ws.root().join(DROPIN).exists());
    assert_eq!(std::fs::read_to_string(ws.root().join(MAIN)).unwrap(), main);
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(&format!("{PROBE}:multi"), &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO);
}

/// The copy matters: with the working mirror in the user's main file and a dead mirror armed,
/// a hand-written drop-in (no copy) breaks pulls, mirrorctl's drop-in still pulls through the
/// user's mirror after trying its own.
#[test]
fn the_users_mirrors_survive_because_the_dropin_copies_them() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("registries-copy");
    let lab = Lab::start(&ws);
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    write_file(&ws.root().join(MAIN), &main_conf(&lab.mirror.host()));
    let latest = format!("{PROBE}:latest");
    let dead = format!("127.0.0.1:{}", common::free_port());

    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(&latest, &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO, "the user's own config");

    // Control: a drop-in with the same prefix and only the dead mirror replaces the table.
    let hand = ws
        .root()
        .join("etc/containers/registries.conf.d/50-hand.conf");
    write_file(
        &hand,
        &format!(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n\
             [[registry.mirror]]\nlocation = \"{dead}\"\ninsecure = true\n"
        ),
    );
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(&latest, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO);
    std::fs::remove_file(&hand).unwrap();

    arm(&ws, &format!("http://{dead}"));
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(&latest, &[]);
    assert_through_mirror(
        &out,
        &lab.mirror,
        mark,
        UA_SKOPEO,
        "the user's mirror copied after mirrorctl's dead one",
    );
    ws.run(&["disarm"]).assert_ok();
    assert!(!ws.root().join(DROPIN).exists());
}

/// Not only Docker Hub: `--mirror quay.io=<mirror>` makes skopeo pull `quay.io/...` through
/// the mirror (the lab mirror proxies any name to the upstream), and disarm takes it back.
#[test]
fn another_registry_through_the_dropin() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("registries-quay");
    let lab = Lab::start(&ws);
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    let reference = "quay.io/library/probe:latest";

    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(reference, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO);

    arm(&ws, &format!("quay.io={}", lab.mirror.url()));
    let dropin = std::fs::read_to_string(ws.root().join(DROPIN)).unwrap();
    assert!(dropin.contains("prefix = \"quay.io\""), "{dropin}");
    assert!(!dropin.contains("docker.io"), "{dropin}");
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(reference, &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO, "skopeo quay.io");

    ws.run(&["disarm"]).assert_ok();
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(reference, &[]);
    assert_not_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO);
}

/// A registries.conf in the v1 format (`[registries.search]`, `[registries.insecure]`,
/// `[registries.block]`, as RHEL 7-era hosts have it) stays as it is: containers/image reads
/// the main file in either format and only the drop-ins must be v2 (`loadConfigFile(path,
/// forceV2)`), so the v2 drop-in works beside it. `podman info` shows the same search list,
/// insecure and blocked registries before and after arm, plus the mirror; skopeo, podman and
/// buildah pull through it; disarm gives the main file back untouched.
#[test]
fn a_v1_main_file_keeps_its_settings_next_to_the_dropin() {
    if !common::require(&["docker-registry", "skopeo", "podman", "buildah", "unshare"]) {
        return;
    }
    let ws = Workspace::new("rv1");
    let lab = Lab::start(&ws);
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    let v1 = "# RHEL 7 style\n[registries.search]\nregistries = ['docker.io', 'quay.io']\n\n[registries.insecure]\nregistries = ['myreg.example:5000']\n\n[registries.block]\nregistries = ['bad.example']\n";
    write_file(&ws.root().join(MAIN), v1);
    let info = || {
        let mut c = env.podman();
        c.args(["info", "--format", "{{json .Registries}}"]);
        let out = common::run(&mut c);
        out.assert_ok();
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = info();
    arm(&ws, &lab.mirror.url());
    assert_eq!(std::fs::read_to_string(ws.root().join(MAIN)).unwrap(), v1);
    let after = info();
    assert_eq!(after["search"], before["search"], "{after}");
    assert_eq!(after["search"], serde_json::json!(["docker.io", "quay.io"]));
    assert_eq!(after["myreg.example:5000"]["Insecure"], true, "{after}");
    assert_eq!(after["bad.example"]["Blocked"], true, "{after}");
    assert_eq!(
        after["docker.io"]["Mirrors"][0]["Location"],
        lab.mirror.host(),
        "{after}"
    );
    let latest = format!("{PROBE}:latest");
    let mark = lab.mirror.log_mark();
    let out = env.skopeo_pull(&latest, &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_SKOPEO, "skopeo");
    let mark = lab.mirror.log_mark();
    let out = env.podman_pull(&latest, &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_PODMAN, "podman");
    let mark = lab.mirror.log_mark();
    let out = env.buildah_pull(&format!("{PROBE}:multi"), &[]);
    assert_through_mirror(&out, &lab.mirror, mark, UA_BUILDAH, "buildah");
    ws.run(&["disarm"]).assert_ok();
    assert_eq!(std::fs::read_to_string(ws.root().join(MAIN)).unwrap(), v1);
    assert!(!ws.root().join(DROPIN).exists());
}
