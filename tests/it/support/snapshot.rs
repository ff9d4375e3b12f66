//! What the engine holds (containers, images with their layers, networks, volumes; in a swarm
//! also services and configs), to tell what a test made that benchctl's labels do not mark.
//! Compare only inside a test group that runs alone ([`super::group`]): other groups' objects
//! would count.

use super::docker_lines;
use std::collections::BTreeSet;

/// Ids of everything the engine holds, by kind.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub containers: BTreeSet<String>,
    pub images: BTreeSet<String>,
    pub networks: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    /// Swarm services and configs (empty outside a swarm).
    pub services: BTreeSet<String>,
    pub configs: BTreeSet<String>,
}

impl Snapshot {
    pub fn take() -> Self {
        let set = |args: &[&str]| docker_lines(args).into_iter().collect::<BTreeSet<_>>();
        let swarm = super::swarm::swarm_state() == "active";
        Snapshot {
            containers: set(&["ps", "-aq", "--no-trunc"]),
            images: set(&["images", "-aq", "--no-trunc"]),
            networks: set(&["network", "ls", "-q", "--no-trunc"]),
            volumes: set(&["volume", "ls", "-q"]),
            services: if swarm {
                set(&["service", "ls", "-q"])
            } else {
                BTreeSet::new()
            },
            configs: if swarm {
                set(&["config", "ls", "-q"])
            } else {
                BTreeSet::new()
            },
        }
    }

    /// What is here now and was not in `before`, without `benchctl.managed=true`: as
    /// `kind id (description)` lines.
    pub fn unlabelled_since(before: &Snapshot) -> Vec<String> {
        let now = Snapshot::take();
        let mut out = Vec::new();
        let mut check = |kind: &str, inspect: &[&str], new: Vec<&String>, what: &str| {
            if new.is_empty() {
                return;
            }
            let mut args: Vec<&str> = inspect.to_vec();
            args.push("--format");
            args.push(what);
            args.extend(new.iter().map(|s| s.as_str()));
            // an object removed meanwhile is not left behind: inspect what is still there
            let out_lines = std::process::Command::new("docker")
                .args(&args)
                .output()
                .expect("docker runs");
            let text = String::from_utf8_lossy(&out_lines.stdout);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let (managed, rest) = line.split_once('|').unwrap_or((line, ""));
                if managed != "true" {
                    out.push(format!("{kind} {rest}"));
                }
            }
        };
        let managed = "{{index .Config.Labels \"benchctl.managed\"}}";
        check(
            "container",
            &["container", "inspect"],
            now.containers.difference(&before.containers).collect(),
            &format!("{managed}|{{{{.Id}}}} {{{{.Name}}}} {{{{.Config.Cmd}}}}"),
        );
        check(
            "image",
            &["image", "inspect"],
            now.images.difference(&before.images).collect(),
            &format!("{managed}|{{{{.Id}}}} {{{{.RepoTags}}}} {{{{.ContainerConfig.Cmd}}}}"),
        );
        check(
            "network",
            &["network", "inspect"],
            now.networks.difference(&before.networks).collect(),
            "{{index .Labels \"benchctl.managed\"}}|{{.Id}} {{.Name}}",
        );
        check(
            "volume",
            &["volume", "inspect"],
            now.volumes.difference(&before.volumes).collect(),
            "{{index .Labels \"benchctl.managed\"}}|{{.Name}}",
        );
        check(
            "service",
            &["service", "inspect"],
            now.services.difference(&before.services).collect(),
            "{{index .Spec.Labels \"benchctl.managed\"}}|{{.ID}} {{.Spec.Name}}",
        );
        check(
            "config",
            &["config", "inspect"],
            now.configs.difference(&before.configs).collect(),
            "{{index .Spec.Labels \"benchctl.managed\"}}|{{.ID}} {{.Spec.Name}}",
        );
        out
    }
}
