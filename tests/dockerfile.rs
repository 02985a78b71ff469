//! The container and Kubernetes files agree with the crate: the Dockerfile builds the real binary with
//! `--locked` on the crate's toolchain and runs it as a non-root user; the Deployment's CPU, workers and
//! grace period are consistent. (No Docker engine or cluster is needed: this reads the files.)

use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn instructions() -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// `[[bin]] name = "..."` from Cargo.toml.
fn bin_name() -> String {
    let toml = read("Cargo.toml");
    let after = toml.split("[[bin]]").nth(1).expect("a [[bin]] table");
    let line = after
        .lines()
        .find(|l| l.trim_start().starts_with("name"))
        .expect("bin name");
    line.split('"').nth(1).expect("quoted name").to_string()
}

#[test]
fn build_command_names_the_binary_and_locked() {
    let bin = bin_name();
    assert_eq!(bin, "workload-generator");
    let builds: Vec<String> = instructions()
        .into_iter()
        .filter(|i| i.starts_with("RUN") && i.contains("cargo build"))
        .collect();
    assert_eq!(builds.len(), 1, "one cargo build: {builds:?}");
    let words: Vec<&str> = builds[0].split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "build")
        .expect("cargo build");
    let args = &words[at..];
    assert!(args.contains(&"--release"), "{args:?}");
    assert!(args.contains(&"--locked"), "{args:?}");
    let b = args.iter().position(|w| *w == "--bin").expect("--bin");
    assert_eq!(args[b + 1], bin);
    // The built file is the one copied into the runtime image and run.
    assert!(builds[0].contains(&format!("target/release/{bin}")));
    let cook = instructions()
        .into_iter()
        .find(|i| i.contains("cargo chef cook"))
        .expect("a cargo-chef dependency layer");
    assert!(cook.contains("--locked") && cook.contains(&format!("--bin {bin}")));
}

#[test]
fn toolchain_runtime_user_and_entrypoint() {
    let ins = instructions();
    let toml = read("Cargo.toml");
    let rust_version = toml
        .lines()
        .find(|l| l.starts_with("rust-version"))
        .and_then(|l| l.split('"').nth(1))
        .expect("rust-version");
    assert!(
        ins.iter()
            .any(|i| i == &format!("ARG RUST_VERSION={rust_version}")),
        "the builder image matches rust-version {rust_version}"
    );
    let froms: Vec<&String> = ins.iter().filter(|i| i.starts_with("FROM")).collect();
    assert_eq!(froms.len(), 4, "chef, planner, builder, runtime: {froms:?}");
    assert!(froms.iter().all(|f| !f.contains(":latest")));
    let user = ins
        .iter()
        .rev()
        .find(|i| i.starts_with("USER"))
        .expect("USER");
    let uid: u32 = user[5..]
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("numeric uid");
    assert!(uid > 0, "non-root");
    let bin = bin_name();
    assert!(ins.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{bin}\"]")));
    assert!(ins.contains(&"EXPOSE 8080".to_string()));
    let health = ins
        .iter()
        .find(|i| i.starts_with("HEALTHCHECK"))
        .expect("HEALTHCHECK");
    assert!(health.contains(&format!("CMD [\"/usr/local/bin/{bin}\", \"healthcheck\"]")));
    assert!(ins.iter().any(|i| i.contains("WG_BIND=0.0.0.0:8080")));
    assert!(
        ins.iter()
            .any(|i| i.starts_with("LABEL") && i.contains("org.opencontainers.image.title"))
    );
    let ignore = read(".dockerignore");
    for must in ["target/", ".git/"] {
        assert!(
            ignore.lines().any(|l| l == must),
            ".dockerignore has {must}"
        );
    }
    for needed in ["src", "assets", "benches", "Cargo.lock"] {
        assert!(
            !ignore.lines().any(|l| l.trim_end_matches('/') == needed),
            "{needed} is needed by the build"
        );
    }
}

/// Value of `key: "v"` / `key: v` in a YAML text (first occurrence).
fn yaml_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not found"))
        .trim()
        .trim_matches('"')
        .to_string()
}

#[test]
fn deployment_cpu_workers_and_grace_agree() {
    let dep = read("deploy/base/deployment.yaml");
    let cm = read("deploy/base/configmap.yaml");
    let requests = dep.split("requests:").nth(1).expect("requests");
    let limits = dep.split("limits:").nth(1).expect("limits");
    let cpu_req = yaml_value(requests, "cpu");
    let cpu_lim = yaml_value(limits, "cpu");
    assert_eq!(cpu_req, cpu_lim, "CPU requests == limits");
    let cpus: u32 = cpu_req.parse().expect("a whole number of CPUs");
    let workers: u32 = yaml_value(&cm, "WG_WORKERS").parse().unwrap();
    assert_eq!(workers, cpus, "WG_WORKERS matches the CPU limit");
    let grace: u32 = yaml_value(&dep, "terminationGracePeriodSeconds")
        .parse()
        .unwrap();
    let shutdown: u32 = yaml_value(&cm, "WG_SHUTDOWN_GRACE_SECS").parse().unwrap();
    assert!(grace > shutdown, "{grace} > {shutdown}");
    assert_eq!(yaml_value(&cm, "WG_BIND"), "0.0.0.0:8080");
    for must in [
        "runAsNonRoot: true",
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
        "drop: [\"ALL\"]",
        "type: RuntimeDefault",
        "path: /readyz",
        "path: /healthz",
        "startupProbe:",
    ] {
        assert!(dep.contains(must), "deployment has {must}");
    }
    let image = yaml_value(&dep, "image");
    assert!(
        image.contains(':') && !image.ends_with(":latest"),
        "pinned tag: {image}"
    );
}

#[test]
fn example_job_spec_is_a_valid_generation_spec() {
    let job = read("deploy/examples/generate-job.yaml");
    let body: String = job
        .lines()
        .skip_while(|l| l.trim() != "spec.json: |")
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(|l| format!("{}\n", &l[4..]))
        .collect();
    assert!(!body.is_empty(), "spec.json found");
    let spec: workload_generator::domain::spec::GenerationSpec =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let v = spec.validate().expect("valid spec");
    assert_eq!(v.seed(), 42);
}
