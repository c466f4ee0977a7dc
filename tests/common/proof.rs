//! Proof that a pull of the probe ([`REPO`]) went (or did not go) through a mirror, from the
//! mirror's access log.

use super::image::REPO;
use super::registry::{lines, AccessEntry, Registry};
use super::Out;

/// User-agent prefixes of the real clients, as the mirror logs them.
/// dockerd 20.10: `docker/20.10.24+dfsg1 go/… UpstreamClient(Docker-Client/…)`.
pub const UA_DOCKERD: &str = "docker/";
/// `ctr` (`containerd/1.6.20~ds1`) and dockerd's built-in BuildKit (`containerd/1.6.20+unknown`).
pub const UA_CONTAINERD: &str = "containerd/";
/// podman 4.3 (`containers/5.23.1`, the containers/image library).
pub const UA_PODMAN: &str = "containers/";
/// skopeo (`skopeo/1.9.3`).
pub const UA_SKOPEO: &str = "skopeo/";
/// buildah 1.28 (`Buildah/1.28.2`).
pub const UA_BUILDAH: &str = "Buildah/";

/// Anything with an access log in [`AccessEntry`] form (a `docker-registry`; a `mirrorctl
/// serve` test can implement it for its own log).
pub trait AccessLogged {
    /// Every request logged so far, in order.
    fn access_log(&self) -> Vec<AccessEntry>;

    /// A position in the log, for [`AccessLogged::requests_since`].
    fn log_mark(&self) -> usize {
        self.access_log().len()
    }

    /// Requests logged after `mark`.
    fn requests_since(&self, mark: usize) -> Vec<AccessEntry> {
        self.access_log().into_iter().skip(mark).collect()
    }

    /// How many `GET <path>` were logged after `mark`.
    fn gets_since(&self, mark: usize, path: &str) -> usize {
        self.requests_since(mark)
            .iter()
            .filter(|e| e.method == "GET" && e.path == path)
            .count()
    }
}

impl AccessLogged for Registry {
    fn access_log(&self) -> Vec<AccessEntry> {
        Registry::access_log(self)
    }
}

/// Manifest and blob requests for the probe since `mark` whose user agent starts with `ua`.
pub fn repo_requests(mirror: &dyn AccessLogged, mark: usize, ua: &str) -> Vec<AccessEntry> {
    mirror
        .requests_since(mark)
        .into_iter()
        .filter(|e| (e.is_manifest_of(REPO) || e.is_blob_of(REPO)) && e.user_agent.starts_with(ua))
        .collect()
}

/// Assert that `log` holds, for each of `uas`, a blob request for the probe from a client whose
/// user agent contains it.
pub fn assert_blob_requests_by(log: &[AccessEntry], uas: &[&str]) {
    for ua in uas {
        assert!(
            log.iter()
                .any(|e| e.is_blob_of(REPO) && e.user_agent.contains(ua)),
            "no {ua} blob request at the mirror:\n{}",
            lines(log)
        );
    }
}

/// Assert the pull `out` succeeded and the mirror answered a manifest request for the probe
/// with 200 to a client whose user agent starts with `ua` (since `mark`). For containerd-based
/// clients also assert every request carries `?ns=docker.io`. `what` names the pull in messages.
pub fn assert_through_mirror(
    out: &Out,
    mirror: &dyn AccessLogged,
    mark: usize,
    ua: &str,
    what: &str,
) {
    out.assert_ok();
    let all = mirror.requests_since(mark);
    let mine = repo_requests(mirror, mark, ua);
    assert!(
        mine.iter()
            .any(|e| e.is_manifest_of(REPO) && e.status == 200),
        "{what}: the pull succeeded but the mirror's access log shows no 200 manifest request \
         with user agent {ua}…; the mirror saw:\n{}\n{out}",
        lines(&all)
    );
    if ua == UA_CONTAINERD {
        // containerd names the registry it is mirroring.
        assert!(
            mine.iter()
                .all(|e| e.query.as_deref() == Some("ns=docker.io")),
            "containerd requests without ?ns=docker.io:\n{}",
            lines(&mine)
        );
    }
}

/// Assert the pull `out` failed, that no request for the probe from `ua` reached the mirror
/// since `mark`, and that it failed by trying Docker Hub (the proxy guard on 127.0.0.1:9), not
/// for some unrelated reason.
pub fn assert_not_through_mirror(out: &Out, mirror: &dyn AccessLogged, mark: usize, ua: &str) {
    out.assert_fail();
    let mine = repo_requests(mirror, mark, ua);
    assert!(
        mine.is_empty(),
        "the mirror still served {ua}…:\n{}",
        lines(&mine)
    );
    assert!(
        out.combined().contains("127.0.0.1:9") || out.combined().contains("registry-1.docker.io"),
        "pull failed, but not by trying Docker Hub: {out}"
    );
}
