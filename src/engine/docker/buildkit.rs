//! BuildKit's side of a build: its status messages (vertices, their logs) turned into the
//! progress display's lines, numbered per step as `docker build --progress=plain` numbers them,
//! and the hints an error of the engine's BuildKit needs (a frontend it cannot fetch, syntax its
//! built-in frontend does not know).

use bollard::moby::buildkit::v1::StatusResponse;
use std::collections::HashMap;

/// The lines of a BuildKit build so far: each step once when it starts, its output, and how it
/// ended (`DONE`, `CACHED`, `ERROR: ...`).
#[derive(Default)]
pub(crate) struct Progress {
    /// Each vertex's number, in the order they appeared.
    numbers: HashMap<String, usize>,
    /// The vertices already said to have started, and to have ended.
    started: HashMap<String, bool>,
    /// Output not yet ended by a newline, per vertex.
    partial: HashMap<String, String>,
}

impl Progress {
    fn number(&mut self, digest: &str) -> usize {
        let next = self.numbers.len() + 1;
        *self.numbers.entry(digest.to_string()).or_insert(next)
    }

    /// The lines `status` adds.
    pub(crate) fn lines(&mut self, status: &StatusResponse) -> Vec<String> {
        let mut out = Vec::new();
        for v in &status.vertexes {
            let n = self.number(&v.digest);
            let ended = v.completed.is_some();
            let seen = self.started.get(&v.digest).copied();
            if seen.is_none() && (v.started.is_some() || v.cached) {
                out.push(format!("#{n} {}", v.name));
                self.started.insert(v.digest.clone(), false);
            }
            if ended && self.started.get(&v.digest) == Some(&false) {
                if let Some(rest) = self.partial.remove(&v.digest) {
                    if !rest.trim().is_empty() {
                        out.push(format!("#{n} {}", rest.trim_end()));
                    }
                }
                out.push(match (v.cached, v.error.is_empty()) {
                    (true, _) => format!("#{n} CACHED"),
                    (false, true) => format!("#{n} DONE"),
                    (false, false) => format!("#{n} ERROR: {}", v.error),
                });
                self.started.insert(v.digest.clone(), true);
            }
        }
        for log in &status.logs {
            let n = self.number(&log.vertex);
            let text = String::from_utf8_lossy(&log.msg);
            let buffer = self.partial.entry(log.vertex.clone()).or_default();
            buffer.push_str(&text);
            while let Some(i) = buffer.find('\n') {
                let line: String = buffer.drain(..=i).collect();
                let line = line.trim_end();
                if !line.is_empty() {
                    out.push(format!("#{n} {line}"));
                }
            }
        }
        out
    }
}

/// What to do about an error of the engine's BuildKit, when benchctl knows better than its
/// message.
pub(crate) fn hint(message: &str) -> Option<&'static str> {
    if message.contains("frontend gateway") || message.contains("resolve image config for") {
        return Some(
            "the Dockerfile's `# syntax=` directive names a Dockerfile frontend image the engine \
             could not fetch from its registry; remove the directive to build with the engine's \
             built-in frontend, or make the image available to the engine",
        );
    }
    if message.contains("requires BuildKit") {
        return Some(
            "this Dockerfile needs BuildKit, and the deploy built with the classic builder (the \
             `builder:` line says why): bound the engine's BuildKit steps (README: Builders) or \
             choose --builder buildkit for branches you trust",
        );
    }
    if message.contains("dockerfile parse error") && message.contains("Unknown flag") {
        return Some(
            "the engine's built-in Dockerfile frontend does not know this flag: `COPY --link`, \
             `--chmod` on more than COPY, `--exclude` and heredocs come with Docker 23 and newer \
             (or a `# syntax=docker/dockerfile:1` directive, whose frontend image the engine \
             must be able to fetch)",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{Vertex, VertexLog};

    fn vertex(digest: &str, name: &str, started: bool, done: bool, cached: bool) -> Vertex {
        let t = Some(Default::default());
        Vertex {
            digest: digest.into(),
            name: name.into(),
            started: if started { t } else { None },
            completed: if done { t } else { None },
            cached,
            ..Default::default()
        }
    }

    fn log(digest: &str, msg: &str) -> VertexLog {
        VertexLog {
            vertex: digest.into(),
            msg: msg.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn steps_are_numbered_said_once_with_their_output_and_end() {
        let mut p = Progress::default();
        let first = StatusResponse {
            vertexes: vec![
                vertex("a", "[1/2] COPY busybox /bin/busybox", false, false, false),
                vertex("b", "[2/2] RUN make", true, false, false),
            ],
            logs: vec![log("b", "compiling\npart")],
            ..Default::default()
        };
        assert_eq!(p.lines(&first), ["#2 [2/2] RUN make", "#2 compiling"]);
        let second = StatusResponse {
            vertexes: vec![
                vertex("a", "[1/2] COPY busybox /bin/busybox", true, true, true),
                vertex("b", "[2/2] RUN make", true, false, false),
            ],
            logs: vec![log("b", "ial\n")],
            ..Default::default()
        };
        assert_eq!(
            p.lines(&second),
            [
                "#1 [1/2] COPY busybox /bin/busybox",
                "#1 CACHED",
                "#2 partial"
            ]
        );
        let mut failed = vertex("b", "[2/2] RUN make", true, true, false);
        failed.error = "exit code: 2".into();
        let third = StatusResponse {
            vertexes: vec![failed],
            ..Default::default()
        };
        assert_eq!(p.lines(&third), ["#2 ERROR: exit code: 2"]);
        // an ended step is not said again
        assert!(p.lines(&third).is_empty());
    }

    #[test]
    fn errors_of_the_built_in_frontend_get_a_hint() {
        assert!(hint("failed to solve with frontend dockerfile.v0: failed to solve with frontend gateway.v0: failed to do request").unwrap().contains("# syntax="));
        assert!(hint("dockerfile parse error line 2: Unknown flag: link")
            .unwrap()
            .contains("Docker 23"));
        assert!(hint(
            "the --mount option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/"
        )
        .unwrap()
        .contains("--builder buildkit"));
        assert_eq!(
            hint("executor failed running [/bin/sh -c make]: exit code: 2"),
            None
        );
    }
}
