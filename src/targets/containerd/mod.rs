//! containerd: `certs.d/<registry>/hosts.toml` files and the CRI registry's `config_path` in
//! `/etc/containerd/config.toml`.
//!
//! - [`hosts`]: the hosts.toml planner (mirrorctl's hosts first; read per pull, no restart).
//! - [`config`]: the config.toml planner (`config_path` in the table the file's schema uses;
//!   read at start).
//! - [`legacy`]: what a config.toml says, read as containerd reads it (schema, CRI disabled,
//!   `config_path`, the deprecated `registry.mirrors` / `configs.<host>.tls`).
//! - [`setup`]: how to arm a host from that: where hosts.toml goes, whether config.toml is
//!   edited, what `--migrate` moves where.
//! - [`version`]: what each containerd version reads.

pub mod config;
pub mod hosts;
pub mod legacy;
pub mod setup;
pub mod version;

pub use config::plan_config;
pub use hosts::{plan_hosts, HostsWant};

/// The certs.d directory for a registry. containerd 1.6 and 2.x look up `host_port_` first and
/// then `host:port` (`hostDirectory` / `hostPaths` in `remotes/docker/config/hosts.go`); the
/// documented spelling `host:port` works for both, so that is what mirrorctl writes.
pub fn host_dir_name(registry: &str) -> String {
    registry.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PlanError;
    use crate::mirror::Mirror;
    use crate::targets::Planned;

    fn m(s: &str) -> Mirror {
        Mirror::parse(s).unwrap()
    }

    fn ph(
        current: Option<&str>,
        registry: &str,
        mirrors: &[Mirror],
        insecure: bool,
        prev: &[String],
    ) -> Result<Planned, PlanError> {
        let moved = setup::Moved::default();
        let w = HostsWant {
            registry,
            mirrors,
            insecure,
            dial_timeout: None,
            moved: &moved,
        };
        plan_hosts(current, &w, prev)
    }

    fn pc(
        current: Option<&str>,
        dir: &str,
        want: bool,
        prev: &[String],
    ) -> Result<Planned, PlanError> {
        plan_config(current, dir, want, false, prev)
    }

    #[test]
    fn fresh_hosts_file() {
        let p = ph(None, "docker.io", &[m("http://127.0.0.1:5001")], false, &[]).unwrap();
        assert_eq!(
            p.text,
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://127.0.0.1:5001\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        let again = ph(
            Some(&p.text),
            "docker.io",
            &[m("http://127.0.0.1:5001")],
            false,
            &p.owned,
        )
        .unwrap();
        assert_eq!(again.text, p.text);
        assert_eq!(again.owned, p.owned);
        let back = ph(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text.trim(), "");
    }

    #[test]
    fn mirrorctl_hosts_go_first() {
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host.\"https://user.example\"]\n  capabilities = [\"pull\"]\n  [host.\"https://user.example\".header]\n    x-a = \"b\"\n";
        let p = ph(
            Some(cur),
            "docker.io",
            &[m("http://a:1"), m("https://b:2")],
            true,
            &[],
        )
        .unwrap();
        let a = p.text.find("http://a:1").unwrap();
        let b = p.text.find("https://b:2").unwrap();
        let u = p.text.find("[host.\"https://user.example\"]").unwrap();
        let h = p.text.find(".header]").unwrap();
        assert!(a < b && b < u && u < h, "{}", p.text);
        assert!(p.text.contains("skip_verify = true"));
        let back = ph(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert!(
            !back.text.contains("a:1")
                && back.text.contains("user.example")
                && back.text.contains("x-a"),
            "{}",
            back.text
        );
    }

    #[test]
    fn mixed_line_ends_and_no_final_newline_survive_arm_and_disarm() {
        // Found by the fuzz harness: toml_edit dropped the `\r`s and added a final newline.
        let cur = "# mine\r\nserver = \"https://registry-1.docker.io\"\n\r\n[host.\"https://user.example\"]\r\n  capabilities = [\"pull\"]";
        let p = ph(Some(cur), "docker.io", &[m("http://a:1")], false, &[]).unwrap();
        assert!(p.text.starts_with("# mine\r\n"), "{:?}", p.text);
        let back = ph(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur);
        let cur = "version = 2\r\n# x\n[plugins.\"io.containerd.grpc.v1.cri\"]\r\n  sandbox_image = \"p\"";
        let dir = "/etc/containerd/certs.d";
        let p = pc(Some(cur), dir, true, &[]).unwrap();
        assert!(!p.text.ends_with('\n'), "{:?}", p.text);
        assert_eq!(pc(Some(&p.text), dir, false, &p.owned).unwrap().text, cur);
    }

    #[test]
    fn an_implicit_registry_table_stays_implicit() {
        // Found by the fuzz harness: with only `[….registry.configs."h".tls]` in the file, the
        // registry table got a header for config_path, and disarm left it, empty.
        let dir = "/etc/containerd/certs.d";
        let cur = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"reg.example\".auth]\n  username = \"u\"\n";
        let p = pc(Some(cur), dir, true, &[]).unwrap();
        assert!(p.text.contains("config_path"), "{}", p.text);
        assert_eq!(pc(Some(&p.text), dir, true, &p.owned).unwrap(), p);
        assert_eq!(pc(Some(&p.text), dir, false, &p.owned).unwrap().text, cur);
    }

    #[test]
    fn refuses_a_cri_registry_that_is_not_a_table() {
        // Found by the fuzz harness: `registry = 3` was replaced by mirrorctl's table, and
        // disarm removed it.
        let cur = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  registry = 3\n";
        let e = pc(Some(cur), "/etc/containerd/certs.d", true, &[]).unwrap_err();
        assert_eq!((e.line, e.column), (4, 3), "{e}");
        assert!(e.message.contains("must be a table"), "{e}");
    }

    #[test]
    fn the_users_empty_host_table_stays() {
        // Found by the fuzz harness: disarm removed the user's empty `[host]` with mirrorctl's.
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host]\n";
        let p = ph(Some(cur), "docker.io", &[m("http://a:1")], false, &[]).unwrap();
        let back = ph(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn only_mirrorctls_hosts_move() {
        // Found by the fuzz harness: every host table got a new position, each with its
        // sub-tables right after it, so a sub-table the user wrote after another host moved,
        // and disarm could not put it back.
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host.\"https://a.example\"]\n[host.\"https://b.example\".header]\nx = \"y\"\n  [host.\"https://a.example\".header]\n    x-team = \"ci\"\n";
        let p = ph(
            Some(cur),
            "docker.io",
            &[m("http://m:1"), m("https://b.example")],
            false,
            &[],
        )
        .unwrap();
        let at = |s: &str| p.text.find(s).unwrap();
        assert!(
            at("[host.\"http://m:1\"]") < at("[host.\"https://b.example\".header]")
                && at("[host.\"https://b.example\".header]") < at("[host.\"https://a.example\"]")
                && at("[host.\"https://a.example\"]") < at("[host.\"https://a.example\".header]"),
            "{}",
            p.text
        );
        let cur = "server = \"https://registry-1.docker.io\"\n\n[host.\"https://a.example\"]\n[host.\"https://b.example\".header]\nx = \"y\"\n  [host.\"https://a.example\".header]\n    x-team = \"ci\"\n";
        let p = ph(Some(cur), "docker.io", &[m("http://m:1")], false, &[]).unwrap();
        let again = ph(
            Some(&p.text),
            "docker.io",
            &[m("http://m:1")],
            false,
            &p.owned,
        )
        .unwrap();
        assert_eq!(again, p);
        let back = ph(Some(&p.text), "docker.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur, "{}", p.text);
    }

    #[test]
    fn keys_before_the_added_server_keep_their_indentation() {
        // Found by the fuzz harness: re-inserted after `server`, `  capabilities` lost its
        // indentation and disarm could not give it back.
        let cur = "  capabilities = [\"pull\"] # all hosts\n\n[host.\"https://u.example\"]\n";
        let p = ph(Some(cur), "quay.io", &[m("http://a:1")], false, &[]).unwrap();
        assert!(
            p.text.starts_with(
                "server = \"https://quay.io\"\n  capabilities = [\"pull\"] # all hosts\n"
            ),
            "{}",
            p.text
        );
        let back = ph(Some(&p.text), "quay.io", &[], false, &p.owned).unwrap();
        assert_eq!(back.text, cur);
    }

    #[test]
    fn refuses_a_host_entry_that_is_not_a_table() {
        // Found by the fuzz harness: `capabilities` under `[host]` was taken for a host that
        // comes before mirrorctl's; containerd fails to decode such a file.
        let cur =
            "server = \"https://registry-1.docker.io\"\n\n[host]\ncapabilities = [\"pull\"]\n";
        let e = ph(Some(cur), "docker.io", &[m("http://a:1")], false, &[]).unwrap_err();
        assert_eq!((e.line, e.column), (4, 1), "{e}");
        assert!(e.message.contains("`host.capabilities`"), "{e}");
        let inline = "[host]\n\"https://u.example\" = { capabilities = [\"pull\"] }\n";
        ph(Some(inline), "docker.io", &[m("http://a:1")], false, &[]).unwrap();
    }

    #[test]
    fn disarm_of_a_written_config_leaves_nothing() {
        // `plugins` still held the empty CRI table, so `version = 2` stayed (fuzz harness).
        let dir = "/etc/containerd/certs.d";
        for cur in [None, Some("")] {
            let p = pc(cur, dir, true, &[]).unwrap();
            let back = pc(Some(&p.text), dir, false, &p.owned).unwrap();
            assert_eq!(back.text, "", "{:?}", p.text);
        }
    }

    #[test]
    fn config_path_set_prepended_and_refused() {
        let dir = "/etc/containerd/certs.d";
        let v2 = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/other\"\n";
        let p = pc(Some(v2), dir, true, &[]).unwrap();
        assert!(
            p.text
                .contains("config_path = \"/etc/containerd/certs.d:/other\""),
            "{}",
            p.text
        );
        assert_eq!(pc(Some(&p.text), dir, false, &p.owned).unwrap().text, v2);
        let v3 = "version = 3\n";
        let p = pc(Some(v3), dir, true, &[]).unwrap();
        assert!(
            p.text
                .contains("[plugins.\"io.containerd.cri.v1.images\".registry]"),
            "{}",
            p.text
        );
        assert_eq!(pc(Some(&p.text), dir, false, &p.owned).unwrap().text, v3);
        let dep = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m\"]\n";
        let e = pc(Some(dep), dir, true, &[]).unwrap_err();
        assert!(
            e.message
                .contains("cannot be set when `config_path` is provided"),
            "{e}"
        );
        // Version 1 (no `version` key): containerd 1.x reads `plugins.cri`.
        let v1 = "[plugins.cri.containerd]\n  snapshotter = \"overlayfs\"\n";
        let p = pc(Some(v1), dir, true, &[]).unwrap();
        assert!(
            p.text
                .contains("[plugins.cri.registry]\n  config_path = \"/etc/containerd/certs.d\""),
            "{}",
            p.text
        );
        assert_eq!(pc(Some(&p.text), dir, false, &p.owned).unwrap().text, v1);
    }
}
