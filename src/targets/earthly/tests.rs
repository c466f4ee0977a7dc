use super::*;

fn set(urls: &[&str], insecure: bool) -> MirrorSet {
    let v: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
    if v.is_empty() {
        return MirrorSet {
            registries: vec![],
            insecure,
        };
    }
    MirrorSet::from_args(&v, "docker.io", insecure).unwrap()
}

fn none() -> MirrorSet {
    set(&[], false)
}

/// arm, arm again (same), disarm (the original bytes).
fn round_trip(cur: Option<&str>, s: &MirrorSet) -> Planned {
    let p = plan(cur, s, &[]).unwrap();
    let again = plan(Some(&p.text), s, &p.owned).unwrap();
    assert_eq!(again, p, "arm twice != arm once\n{}", p.text);
    let back = plan(Some(&p.text), &none(), &p.owned)
        .unwrap_or_else(|e| panic!("disarm of\n{}\n{:?}\n{e}", p.text, p.owned));
    assert_eq!(back.text, cur.unwrap_or(""), "disarm\n{}", p.text);
    assert!(back.owned.is_empty());
    p
}

#[test]
fn fresh_file() {
    let p = round_trip(None, &set(&["http://127.0.0.1:5001"], false));
    assert_eq!(
        p.text,
        "global:\n    buildkit_additional_config: |\n        [registry.\"docker.io\"]\n          mirrors = [\"127.0.0.1:5001\"]\n\n        [registry.\"127.0.0.1:5001\"]\n          http = true\n"
    );
}

fn hp() -> MirrorSet {
    set(&["http://127.0.0.1:5001"], false)
}

fn real(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/real/earthly/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn every_real_config_round_trips_or_is_refused_at_its_line() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/real/earthly");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 12);
    for n in names {
        let cur = real(&n);
        if n.starts_with("009") {
            let e = plan(Some(&cur), &hp(), &[]).unwrap_err();
            assert_eq!((e.line, e.column), (3, 1), "{e}");
            assert!(e.message.contains("lines 1 and 3"), "{e}");
            continue;
        }
        let p = round_trip(Some(&cur), &hp());
        let f = facts(&p.text).unwrap();
        let toml = f.additional_config.unwrap();
        assert!(toml.starts_with('['), "{n}: {toml}");
        assert!(
            toml.contains("mirrors = [\"127.0.0.1:5001\"]"),
            "{n}: {toml}"
        );
        assert_eq!(
            p.text.ends_with('\n'),
            cur.ends_with('\n'),
            "{n}: final newline\n{}",
            p.text
        );
        // Re-armed for another mirror, then disarmed: the original again.
        let s2 = set(
            &["https://m.example", "ghcr.io=http://127.0.0.1:5002"],
            true,
        );
        let b = plan(Some(&p.text), &s2, &p.owned).unwrap();
        let back = plan(Some(&b.text), &none(), &b.owned).unwrap();
        assert_eq!(back.text, cur, "{n}\n{}", b.text);
    }
}

#[test]
fn merges_into_the_users_string_keeping_the_rest() {
    // 004: a block scalar, then more keys of `global` and another section.
    let cur = real("004-config.yaml");
    let p = plan(Some(&cur), &hp(), &[]).unwrap();
    assert!(p
        .text
        .starts_with(&cur[..cur.find("    buildkit_additional_config").unwrap()]));
    assert!(
        p.text
            .ends_with("    org: defn\nsatellite:\n    name: dfd\n"),
        "{}",
        p.text
    );
    let toml = facts(&p.text).unwrap().additional_config.unwrap();
    // The user's table for the mirror host already says http = true: kept, not duplicated.
    assert_eq!(toml.matches("[registry.\"169.254.32.1:5000\"]").count(), 1);
    assert!(
        toml.contains("[registry.\"127.0.0.1:5001\"]\n  http = true"),
        "{toml}"
    );
    assert!(p
        .text
        .contains("    buildkit_additional_config: |\n        [registry.\"169.254.32.1:5000\"]\n"));
}

#[test]
fn a_block_at_the_end_without_a_final_newline_stays_so() {
    let cur = real("007-config.yaml");
    assert!(!cur.ends_with('\n'));
    let p = plan(Some(&cur), &hp(), &[]).unwrap();
    assert!(!p.text.ends_with('\n'), "{:?}", p.text);
    assert!(p.text.ends_with("      http = true"), "{:?}", p.text);
}

#[test]
fn inserts_the_key_first_in_global_with_the_files_indent() {
    let cur = "global:\n  cache_size_mb: 10\ngit:\n  github.com:\n    auth: ssh\n";
    let p = round_trip(Some(cur), &hp());
    assert!(
        p.text.starts_with("global:\n  buildkit_additional_config: |\n    [registry.\"docker.io\"]\n      mirrors = [\"127.0.0.1:5001\"]\n"),
        "{}",
        p.text
    );
    assert!(p
        .text
        .ends_with("  cache_size_mb: 10\ngit:\n  github.com:\n    auth: ssh\n"));
}

#[test]
fn adds_global_when_missing_or_empty() {
    for cur in [
        "",
        "# my earthly config",
        "# my earthly config\n",
        "---\n",
        "git:\n    example.com:\n        auth: ssh\n",
        "global:\n",
        "global: ~ # empty\n",
        "global:\ngit: {}\n",
    ] {
        let p = round_trip(Some(cur), &hp());
        let f = facts(&p.text).unwrap();
        assert!(f.additional_config.is_some(), "{cur:?}\n{}", p.text);
    }
    let p = plan(Some("git:\n  a:\n    auth: ssh\n"), &hp(), &[]).unwrap();
    assert!(
        p.text
            .starts_with("global:\n  buildkit_additional_config: |\n    [registry"),
        "{}",
        p.text
    );
}

#[test]
fn any_scalar_style_is_rewritten_as_a_literal_block_and_put_back() {
    for cur in [
        "global:\n  buildkit_additional_config: '[registry.\"ghcr.io\"]\n\n    mirrors = [\"x.example\"]'\n",
        "global:\n  buildkit_additional_config: \"[registry.\\\"ghcr.io\\\"]\\n  mirrors = [\\\"x.example\\\"]\\n\" # mine\n  other: 1\n",
        "global:\n  buildkit_additional_config: |-\n    [registry.\"ghcr.io\"]\n      mirrors = [\"x.example\"]\n\n\n  other: 1\n",
        "global:\n  buildkit_additional_config: |+ # keep\n    [registry.\"ghcr.io\"]\n\n",
        "global:\n  buildkit_additional_config: >\n    [registry.\"ghcr.io\"]\n",
        "global:\n  buildkit_additional_config:\n  other: 1\n",
        "global:\n  buildkit_additional_config: ''\n",
        "global:\n  buildkit_additional_config: |2\n      [registry.\"ghcr.io\"]\n",
        "global:\n  buildkit_additional_config:\n    '[registry.\"ghcr.io\"]'\n",
        "global:\r\n  buildkit_additional_config: |\r\n    [registry.\"ghcr.io\"]\r\n",
        "\u{feff}global:\n  buildkit_additional_config: |\n    [registry.\"ghcr.io\"]\n",
    ] {
        eprintln!("case {cur:?}");
        let p = round_trip(Some(cur), &hp());
        assert!(p.text.contains("buildkit_additional_config: |"), "{cur:?}\n{}", p.text);
        let f = facts(&p.text).unwrap().additional_config.unwrap();
        assert!(f.contains("127.0.0.1:5001"), "{cur:?}\n{f}");
    }
}

#[test]
fn refusals_point_at_the_file() {
    let e = plan(
        Some("global:\n  x: 1\n  buildkit_additional_config: |\n    [registry\n"),
        &hp(),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("not TOML"), "{e}");
    let e = plan(
        Some("global:\n  buildkit_additional_config: |\n    # mine\n    registry.\"docker.io\".mirrors = [\"a\"]\n"),
        &hp(),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("before any table header"), "{e}");
    let e = plan(Some("global: {cache_size_mb: 1}\n"), &hp(), &[]).unwrap_err();
    assert!(e.message.contains("flow mapping"), "{e}");
    let e = plan(Some("global: [1]\n"), &hp(), &[]).unwrap_err();
    assert!(e.message.contains("must be a mapping"), "{e}");
    let e = plan(
        Some("global:\n  buildkit_additional_config: [a]\n"),
        &hp(),
        &[],
    )
    .unwrap_err();
    assert!(e.message.contains("string of TOML"), "{e}");
    let e = plan(Some("a: 1\n---\nb: 2\n"), &hp(), &[]).unwrap_err();
    assert!(e.message.contains("several YAML documents"), "{e}");
    let e = plan(Some("global:\n  a: [\n"), &hp(), &[]).unwrap_err();
    assert!(e.message.contains("invalid YAML"), "{e}");
    let e = plan(Some("global:\n  a: 1\n  \"a\": 2\n"), &hp(), &[]).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let e = plan(Some(&deep), &hp(), &[]).unwrap_err();
    assert!(e.message.contains("deeper"), "{e}");
}

#[test]
fn facts_tell_a_remote_buildkit() {
    let f = facts(&real("012-config.yml")).unwrap();
    assert_eq!(
        f.remote_buildkit(),
        Some("tcp://my-repo-buildkitd.dev.steady-fast.net:8372")
    );
    for local in [
        "tcp://127.0.0.1:8372",
        "docker-container://earthly-buildkitd",
        "tcp://[::1]:1",
    ] {
        let f = Facts {
            additional_config: None,
            buildkit_host: Some(local.into()),
        };
        assert_eq!(f.remote_buildkit(), None, "{local}");
    }
}

#[test]
fn positions_count_bytes_not_characters() {
    // Found by the fuzz harness: yaml-rust2's markers count characters.
    let cur = "# é ü\nglobal:\n    x: 'é'\n";
    let p = round_trip(Some(cur), &hp());
    assert!(p.text.contains("x: 'é'"), "{}", p.text);
    let e = plan(Some("# é\nglobal:\n  a: 1\n  a: 2\n"), &hp(), &[]).unwrap_err();
    assert_eq!((e.line, e.column), (4, 3), "{e}");
}

#[test]
fn the_buildkit_planners_refusals_point_into_the_block() {
    // The user's own table for the mirror says `http = false`: refused by the BuildKit
    // planner, at the file's line of the string's table.
    let cur = "global:\n    cache_size_mb: 1\n    buildkit_additional_config: |\n        [registry.\"127.0.0.1:5001\"]\n          http = false\n";
    let e = plan(Some(cur), &hp(), &[]).unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("http = true"), "{e}");
}
