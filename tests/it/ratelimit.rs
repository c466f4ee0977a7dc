//! The Docker Hub budget, visible (issue 13): `mirrorctl serve` in front of an upstream that
//! sends Docker Hub's `ratelimit-*` headers and answers 429 once its limit of manifest GETs is
//! spent ([`crate::common::ratelimit::RateLimited`], in front of a real `docker-registry`).
//! serve's gauges follow the budget, it warns below `--ratelimit-warn` and on the 429; cached
//! images keep flowing (stale-if-error, hits) to `warm`, skopeo and `verify`, which prints the
//! budget serve passes on; an uncached image gets a clear `TOOMANYREQUESTS` naming the
//! upstream's rate limit, with its `Retry-After`.

use crate::common::containers::ContainersEnv;
use crate::common::http::{get, metric, metrics};
use crate::common::image::PROBE;
use crate::common::ratelimit::{RateLimited, RETRY_AFTER, SOURCE, WINDOW};
use crate::common::serve::Serve;
use crate::common::{self, mirrorctl, run_timeout, Out, Seeded, Workspace};
use std::time::Duration;

fn warm(ws: &Workspace, url: &str, image: &str) -> Out {
    let mut c = mirrorctl(ws);
    c.args(["warm", "--mirror", url, "--json", image]);
    run_timeout(&mut c, Duration::from_secs(120))
}

#[test]
fn serve_shows_the_budget_and_keeps_cached_images_flowing_after_a_429() {
    if !common::require(&["docker-registry", "skopeo", "unshare"]) {
        return;
    }
    let ws = Workspace::new("ratelimit");
    let seeded = Seeded::start(&ws, None);
    // latest: 1 manifest GET; multi: the index and its arm64 manifest (amd64 is latest's): 2.
    let hub = RateLimited::start(&seeded.upstream.url(), 3);
    let dir = ws.aux("serve");
    let serve = Serve::start(
        &dir,
        &dir.join("cache"),
        &[
            "--upstream",
            &hub.url(),
            "--tag-ttl",
            "0s",
            "--ratelimit-warn",
            "2",
        ],
    );
    let url = serve.url();
    let gauge = |name: &str| metric(&metrics(&url), &format!("{name}{{upstream=\"docker.io\"}}"));

    let out = warm(&ws, &url, &format!("{PROBE}:latest"));
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(gauge("mirrorctl_upstream_ratelimit_limit"), 3);
    assert_eq!(gauge("mirrorctl_upstream_ratelimit_remaining"), 2);
    assert_eq!(gauge("mirrorctl_upstream_ratelimit_window_seconds"), WINDOW);
    assert!(
        !serve.daemon.stderr().contains("pull budget low"),
        "2 left is not below 2"
    );
    let out = warm(&ws, &url, &format!("{PROBE}:multi"));
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(gauge("mirrorctl_upstream_ratelimit_remaining"), 0);
    let err = serve.daemon.stderr();
    assert!(
        err.contains("upstream docker.io: pull budget low: 1 of 3 left in its 21600 s window (below --ratelimit-warn 2)"),
        "{err}"
    );
    assert_eq!(
        err.matches("pull budget low").count(),
        1,
        "warned once: {err}"
    );

    // Spent: an uncached tag gets a clear 429 naming the upstream's limit.
    let r = get(
        &format!("{url}/v2/library/probe/manifests/v2s2"),
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], RETRY_AFTER);
    let body = String::from_utf8_lossy(r.body()).into_owned();
    assert!(body.contains("TOOMANYREQUESTS"), "{body}");
    assert!(
        body.contains(&format!(
            "the rate limit of upstream 127.0.0.1:{} is reached",
            hub.port
        )) && body.contains("You have reached your pull rate limit")
            && body.contains("cached images are still served"),
        "{body}"
    );
    assert_eq!(r.headers["ratelimit-remaining"], format!("0;w={WINDOW}"));
    let out = warm(&ws, &url, &format!("{PROBE}:v2s2"));
    assert_eq!(out.code(), Some(1), "{out}");
    let doc = crate::json_schema::check("warm", &out);
    assert_eq!(doc["images"][0]["error"]["kind"], "rate-limited", "{doc:#}");
    let err = serve.daemon.stderr();
    assert!(
        err.contains("upstream docker.io answered 429 Too Many Requests, Retry-After: 3600"),
        "{err}"
    );
    assert!(gauge("mirrorctl_upstream_rate_limited_total") >= 1);

    // Cached images keep flowing: the tags are past their TTL, the upstream refuses even the
    // revalidating HEAD now, and the last known manifests and the cached blobs are served.
    let (gets_before, _) = hub.manifest_requests();
    let out = warm(&ws, &url, &format!("{PROBE}:multi"));
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = crate::json_schema::check("warm", &out);
    assert_eq!(doc["images"][0]["mirror"], "cached", "{doc:#}");
    let env = ContainersEnv::new(&ws.root(), &ws.aux("containers"));
    env.use_mirror(&serve.addr);
    let out = env.skopeo_pull(&format!("{PROBE}:latest"), &["--src-tls-verify=false"]);
    assert!(out.ok(), "{out}");
    let (gets_after, heads) = hub.manifest_requests();
    assert_eq!(gets_after, gets_before, "only HEADs revalidate a known tag");
    assert!(heads >= 2, "HEADs {heads}");
    let r = get(
        &format!("{url}/v2/library/probe/manifests/latest"),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.cache_status(), "mirrorctl; fwd=stale; fwd-status=429");

    // verify prints the budget the mirror's upstream reported, which serve passes on.
    let out = common::verify_clients(&ws, &url, &format!("{PROBE}:latest"), &[], |_| {});
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = crate::json_schema::check("verify", &out);
    assert_eq!(
        doc["ratelimit"]["limit"],
        format!("3;w={WINDOW}"),
        "{doc:#}"
    );
    assert_eq!(
        doc["ratelimit"]["remaining"],
        format!("0;w={WINDOW}"),
        "{doc:#}"
    );
    assert_eq!(doc["ratelimit"]["source"], SOURCE, "{doc:#}");
}
