//! Which images a branch may name (`--allow-images`, the operator's): a branch's Dockerfile and
//! Compose file read images from the engine, which holds more than public images (the
//! operator's own, other benches'). A reference is normalized as the engine does (Docker Hub
//! and `library/` filled in, tag and digest dropped) and matched against the operator's
//! patterns; benchctl's own images (`benchctl/...` in any registry) are never a branch's to
//! read, whatever the patterns say.

/// The default `--allow-images`: Docker Hub's official images (`postgres`, `node`, ...) and
/// the Dockerfile frontends Docker publishes.
pub const DEFAULT: &str = "docker.io/library/*,docker.io/docker/dockerfile";

/// The operator's allowed images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePolicy {
    /// Patterns over normalized names; `*` matches any run of characters.
    patterns: Vec<String>,
}

impl Default for ImagePolicy {
    fn default() -> Self {
        ImagePolicy::parse(DEFAULT)
    }
}

impl ImagePolicy {
    /// Comma-separated patterns; each is normalized like a reference (`postgres` means
    /// `docker.io/library/postgres`, `ghcr.io/team/*` stays as it is). `*` alone allows all.
    pub fn parse(list: &str) -> ImagePolicy {
        let patterns = list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p {
                "*" => "*".to_string(),
                p => name_of(p),
            })
            .collect();
        ImagePolicy { patterns }
    }

    /// The patterns as `benchctl config` shows them.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a branch may name `reference`; `Err` says why not.
    pub fn check(&self, reference: &str) -> Result<(), String> {
        if reference == "scratch" {
            return Ok(());
        }
        let name = name_of(reference);
        let path = name.split_once('/').map_or("", |(_, p)| p);
        if path.starts_with("benchctl/") {
            return Err(format!(
                "`{name}` is an image benchctl built for a bench; a branch reads no bench's \
                 image, its own included"
            ));
        }
        if self.patterns.iter().any(|p| glob(p, &name)) {
            return Ok(());
        }
        Err(format!(
            "`{name}` is not among the images the operator allows ({}); whoever runs benchctl \
             allows more with --allow-images or BENCHCTL_ALLOW_IMAGES",
            self.patterns.join(", ")
        ))
    }
}

/// `reference` as the engine reads it: registry, path, no tag or digest
/// (`postgres:15` -> `docker.io/library/postgres`).
pub fn name_of(reference: &str) -> String {
    let no_digest = reference.split('@').next().unwrap_or("");
    // a tag follows the last `:` after the last `/` (a `:` before it is a registry's port)
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let no_tag = match no_digest[last_slash..].find(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    };
    let (first, rest) = no_tag.split_once('/').unwrap_or(("", no_tag));
    let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
    let (registry, path) = match (first, is_registry) {
        ("", _) => ("docker.io", format!("library/{rest}")),
        (_, true) => (first, rest.to_string()),
        (_, false) => ("docker.io", no_tag.to_string()),
    };
    let registry = match registry {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        r => r,
    };
    let path = match (registry, path.contains('/')) {
        ("docker.io", false) => format!("library/{path}"),
        _ => path,
    };
    format!(
        "{}/{}",
        registry.to_ascii_lowercase(),
        path.to_ascii_lowercase()
    )
}

/// Whether `pattern` (`*` any run of characters) matches all of `name`.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalized_as_the_engine_reads_them() {
        assert_eq!(name_of("postgres:15"), "docker.io/library/postgres");
        assert_eq!(name_of("internal/app:prod"), "docker.io/internal/app");
        assert_eq!(name_of("localhost:5000/x/y:1"), "localhost:5000/x/y");
        assert_eq!(name_of("ghcr.io/Team/app@sha256:abc"), "ghcr.io/team/app");
        assert_eq!(
            name_of("index.docker.io/library/redis"),
            "docker.io/library/redis"
        );
    }

    #[test]
    fn the_default_allows_official_images_only_and_no_bench_image_ever() {
        let p = ImagePolicy::default();
        for ok in [
            "postgres:15",
            "docker.io/library/redis:7",
            "scratch",
            "docker/dockerfile:1.4",
        ] {
            assert!(p.check(ok).is_ok(), "{ok}");
        }
        for refused in [
            "internal/app:prod",
            "evil.example.com/x:1",
            "benchctl/proj-3:abc",
        ] {
            assert!(p.check(refused).is_err(), "{refused}");
        }
        let all = ImagePolicy::parse("*");
        assert!(all.check("internal/app:prod").is_ok());
        assert!(all
            .check("registry.example:5000/benchctl/proj-3:abc")
            .is_err());
        let team = ImagePolicy::parse("ghcr.io/team/*, redis");
        assert!(team.check("ghcr.io/team/api:1").is_ok());
        assert!(team.check("redis:7").is_ok());
        assert!(team.check("ghcr.io/other/api:1").is_err());
        assert!(team.check("postgres").is_err());
    }
}
