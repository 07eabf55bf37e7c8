//! The self-hosting files: .env.example lists exactly the variables the configuration reads (plus the
//! compose-only ones) with their defaults, docker-compose.yml is valid (`docker-compose config`), keeps the
//! audit writer's settings and runs migrations before the server, and the Dockerfiles build what they should.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use plystra_http::config::ENV_VARS;

/// Read by docker-compose.yml only, never by the server.
const COMPOSE_ONLY: &[&str] =
    &["POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_PORT", "DOCKER_DATABASE_URL"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn env_example() -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in read(".env.example").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!(".env.example: not NAME=value: {line}"));
        assert!(vars.insert(k.to_string(), v.to_string()).is_none(), ".env.example lists {k} twice");
    }
    vars
}

#[test]
fn env_example_lists_every_configuration_variable_with_its_default() {
    let example = env_example();
    for (name, default) in ENV_VARS {
        match example.get(*name) {
            None => panic!(".env.example lacks {name} (read by src/config.rs)"),
            Some(v) => assert_eq!(v, default, ".env.example's {name} differs from the configuration's default"),
        }
    }
    for name in example.keys() {
        assert!(
            ENV_VARS.iter().any(|(n, _)| n == name) || COMPOSE_ONLY.contains(&name.as_str()),
            ".env.example lists {name}, which nothing reads"
        );
    }
    // The example parses as a configuration (development mode).
    let vars: std::collections::HashMap<String, String> = example.into_iter().collect();
    plystra_http::config::Config::from_vars(&vars).expect(".env.example is a valid configuration");
}

#[test]
fn docker_compose_yml_is_valid_and_wired_as_documented() {
    let compose = read("docker-compose.yml");
    // Every ${VAR} the file interpolates is documented in .env.example.
    let example = env_example();
    for part in compose.split("${").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        assert!(example.contains_key(&name), "docker-compose.yml uses ${{{name}}}, which .env.example lacks");
    }
    assert!(compose.contains("shared_preload_libraries=plystra"));
    assert!(compose.contains("plystra.audit_writer_database=${POSTGRES_DB:-plystra}"));
    assert!(compose.contains("POSTGRES_DB: ${POSTGRES_DB:-plystra}"));
    assert!(compose.contains(r#"command: ["plystractl", "migrate", "up"]"#));
    assert!(compose.contains("condition: service_completed_successfully"));
    assert!(compose.contains("healthcheck:"));

    let installed = Command::new("docker-compose").arg("version").output().is_ok_and(|o| o.status.success());
    if !installed {
        let apt = Command::new("apt-get")
            .args(["install", "-y", "docker-compose"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("apt-get runs (docker-compose is needed to validate docker-compose.yml)");
        assert!(apt.status.success(), "apt-get install docker-compose: {}", String::from_utf8_lossy(&apt.stderr));
    }
    let check = Command::new("docker-compose")
        .current_dir(root())
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .output()
        .unwrap();
    assert!(check.status.success(), "docker-compose config: {}", String::from_utf8_lossy(&check.stderr));
    // And the resolved file keeps the service graph.
    let resolved = Command::new("docker-compose")
        .current_dir(root())
        .args(["-f", "docker-compose.yml", "config"])
        .output()
        .unwrap();
    let resolved = String::from_utf8_lossy(&resolved.stdout);
    for service in ["postgres:", "migrate:", "plystra:"] {
        assert!(resolved.contains(service), "{service} missing:\n{resolved}");
    }
}

#[test]
fn the_dockerfiles_build_the_binaries_and_the_extension() {
    let app = read("Dockerfile");
    assert!(app.contains("FROM debian:bookworm-slim"), "runtime image");
    assert!(app.matches("FROM ").count() >= 2, "multi-stage");
    assert!(app.contains("-p plystra_http -p plystractl --bins"));
    assert!(app.contains("COPY plystractl plystractl"), "plystractl is its own crate");
    for bin in ["plystra_http", "plystractl"] {
        assert!(app.contains(&format!("/out/{bin}")), "{bin} is not in the image");
    }
    assert!(app.contains("COPY migrations migrations") && app.contains("COPY sql sql"), "embedded at build time");
    let pg = read("Dockerfile.postgres");
    assert!(pg.contains("postgres:15") && pg.contains("cargo pgrx package"));
}
