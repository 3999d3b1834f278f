use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn container(name: &str, project: &str, service: &str) -> ContainerInfo {
    let labels = BTreeMap::from([
        (PROJECT.to_string(), project.to_string()),
        (SERVICE.to_string(), service.to_string()),
        (WORKING_DIR.to_string(), format!("/srv/{project}")),
        (
            CONFIG_FILES.to_string(),
            format!("/srv/{project}/docker-compose.yml"),
        ),
    ]);
    ContainerInfo {
        id: name.into(),
        name: name.into(),
        status: "running".into(),
        image: "debian:bookworm".into(),
        image_digest: String::new(),
        env: BTreeMap::new(),
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        mounts: Vec::new(),
        named_volumes: Vec::new(),
        labels,
        networks: vec![format!("{project}_default")],
        addresses: Vec::new(),
    }
}

fn shop() -> Vec<ContainerInfo> {
    let mut db = container("shop-db-1", "shop-prod", "db");
    db.image = "postgres:16".into();
    db.env.insert("POSTGRES_PASSWORD".into(), "secret".into());
    db.mounts = vec![(
        "/var/lib/postgresql/data".into(),
        "/var/lib/docker/volumes/shop_pg/_data".into(),
    )];
    let mut cache = container("shop-redis-1", "shop-prod", "redis");
    cache.cmd = vec![
        "redis-server".into(),
        "--requirepass".into(),
        "hunter2".into(),
    ];
    let mut web = container("shop-web-1", "shop-prod", "web");
    web.mounts = vec![
        ("/var/www/files".into(), "/mnt/data/shop/files".into()),
        ("/var/run/docker.sock".into(), "/var/run/docker.sock".into()),
        (
            "/etc/nginx/site.conf".into(),
            "/srv/shop-prod/site.conf".into(),
        ),
    ];
    let mut n8n = container("shop-n8n-1", "shop-prod", "n8n");
    n8n.mounts = vec![(
        "/home/node/.n8n".into(),
        "/var/lib/docker/volumes/shop_n8n/_data".into(),
    )];
    n8n.named_volumes = vec![("/home/node/.n8n".into(), "shop_n8n".into())];
    let loose = ContainerInfo {
        labels: BTreeMap::new(),
        ..container("stray", "x", "x")
    };
    vec![db, cache, web, n8n, loose]
}

#[test]
fn a_compose_project_becomes_a_stack_of_dumps_volumes_and_its_directory() {
    let sqlite = |p: &Path| p == Path::new("/var/lib/docker/volumes/shop_n8n/_data");
    let p = propose(&shop(), &BTreeMap::new(), &sqlite);
    assert_eq!(p.outside, ["stray"]);
    assert_eq!(p.stacks.len(), 1);
    let s = &p.stacks[0];
    assert_eq!(s.name, "shop-prod");
    assert!(s.production);
    let names: Vec<(&str, SourceKind)> = s
        .sources
        .iter()
        .map(|x| (x.name.as_str(), x.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("db", SourceKind::Postgres),
            ("redis", SourceKind::Redis),
            ("web", SourceKind::Volume),
            ("n8n", SourceKind::Volume),
            ("compose", SourceKind::Volume),
        ]
    );
    assert_eq!(s.sources[0].container.as_deref(), Some("shop-db-1"));
    assert_eq!(s.sources[2].path.as_deref(), Some("/mnt/data/shop/files"));
    assert_eq!(s.sources[3].volume.as_deref(), Some("shop_n8n"));
    assert_eq!(s.sources[3].pause, ["shop-n8n-1"]);
    assert_eq!(s.sources[4].path.as_deref(), Some("/srv/shop-prod"));
    // The socket and the file inside the project directory are left out, with why.
    let notes = s.notes.join("\n");
    assert!(notes.contains("docker.sock: a socket"), "{notes}");
    assert!(
        notes.contains("/srv/shop-prod/site.conf: inside the project directory"),
        "{notes}"
    );

    // Credentials are referenced, never copied.
    let text = render_stack(s, 0);
    assert!(
        !text.contains("secret") && !text.contains("hunter2"),
        "{text}"
    );
    assert!(text.contains("--requirepass"), "{text}");
    let stacks = crate::config::parse_stack_file(Path::new("shop-prod.toml"), &text).unwrap();
    assert_eq!(stacks[0].def.source.len(), 5);
    let drill = render_drill(s, &|_| true);
    let drills = crate::config::drill::parse_drill_file(Path::new("d.toml"), &drill, &stacks);
    assert!(drills.is_ok(), "{drills:?}\n{drill}");
}

#[test]
fn databases_are_known_by_image_command_or_environment() {
    let mut by_cmd = container("a", "p", "a");
    by_cmd.cmd = vec!["/usr/local/bin/drctl-mariadb".into()];
    assert_eq!(database(&by_cmd).unwrap().0, SourceKind::Mysql);
    let mut by_env = container("b", "p", "b");
    by_env
        .env
        .insert("POSTGRES_PASSWORD_FILE".into(), "/run/secrets/pw".into());
    assert_eq!(database(&by_env).unwrap().0, SourceKind::Postgres);
    let mut valkey = container("c", "p", "c");
    valkey.image = "docker.io/valkey/valkey:8@sha256:ab".into();
    assert_eq!(database(&valkey).unwrap().0, SourceKind::Redis);
    // A tool that talks to PostgreSQL is not a server.
    let mut n8n = container("d", "p", "d");
    n8n.image = "n8nio/n8n".into();
    n8n.env.insert("DB_POSTGRESDB_PASSWORD".into(), "x".into());
    assert!(database(&n8n).is_none());
}

#[test]
fn a_second_run_names_what_changed() {
    let first = propose(&shop(), &BTreeMap::new(), &|_| false);
    let text = render_stack(&first.stacks[0], 0);
    let existing = crate::config::parse_stack_file(Path::new("s.toml"), &text)
        .unwrap()
        .remove(0);
    assert!(changes(&existing, &first.stacks[0]).is_empty());
    // One container more, one fewer.
    let mut now = shop();
    now.retain(|c| c.name != "shop-redis-1");
    let mut worker = container("shop-worker-1", "shop-prod", "worker");
    worker.mounts = vec![("/data".into(), PathBuf::from("/mnt/data/shop/worker"))];
    now.push(worker);
    let second = propose(&now, &BTreeMap::new(), &|_| false);
    let said = changes(&existing, &second.stacks[0]).join("\n");
    assert!(
        said.contains("new, not yet a source: /mnt/data/shop/worker"),
        "{said}"
    );
    assert!(
        said.contains("source redis matches nothing running now (container shop-redis-1)"),
        "{said}"
    );
}

#[test]
fn a_project_on_another_projects_network_depends_on_it_and_names_its_compose_project() {
    let mut app = container("dev-app-1", "dev", "app");
    app.networks.push("shared_default".into());
    let db = container("shared-db-1", "shared", "db");
    let owners = BTreeMap::from([
        ("shared_default".to_string(), "shared".to_string()),
        ("dev_default".to_string(), "dev".to_string()),
        ("gone_default".to_string(), "gone".to_string()),
    ]);
    let p = propose(&[app, db], &owners, &|_| false);
    let dev = p.stacks.iter().find(|s| s.name == "dev").unwrap();
    assert_eq!(dev.depends_on, vec!["shared".to_string()]);
    let shared = p.stacks.iter().find(|s| s.name == "shared").unwrap();
    assert!(shared.depends_on.is_empty());
    assert_eq!(
        dev.compose,
        Some(ComposeProposal {
            project: "dev".into(),
            dir: "/srv/dev".into(),
            files: vec!["/srv/dev/docker-compose.yml".into()],
        })
    );
    let text = render_stack(dev, 0);
    assert!(text.contains("depends_on = [\"shared\"]"), "{text}");
    assert!(
        text.contains("[stack.dev.compose]\nproject = \"dev\"\ndir = \"/srv/dev\""),
        "{text}"
    );
    // What discover writes, config check reads.
    let stacks = crate::config::parse_stack_file(Path::new("dev.toml"), &text).unwrap();
    let compose = stacks[0].def.compose.as_ref().unwrap();
    assert_eq!(compose.project(), "dev");
    assert_eq!(stacks[0].def.depends_on[0].get_ref(), "shared");
}
