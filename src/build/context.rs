//! The build context: the checkout walked as the docker CLI walks it (`.dockerignore` rules,
//! the Dockerfile and `.dockerignore` always sent) and streamed to the engine as a tar in
//! bounded memory; the labels and Dockerfile as sent.

use super::dockerignore::{keep_build_files, parse, Matcher};
use crate::engine::ContextStream;
use crate::output::{Event, SharedReporter};
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Size of the chunks sent to the engine, and how many may wait in the channel: the context is
/// never held in memory beyond about `CHUNK * (QUEUE + 1)` bytes.
const CHUNK: usize = 64 * 1024;
const QUEUE: usize = 4;

/// Walks `root` in the order and with the exclusions of the docker CLI, calling `visit` for
/// every entry sent in the context (directories included).
pub fn walk_context(
    root: &Path,
    dockerfile: &str,
    visit: &mut dyn FnMut(&str, &Path, &Metadata) -> io::Result<()>,
) -> io::Result<()> {
    let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let patterns = keep_build_files(ignore, dockerfile);
    let matcher = Matcher::new(&patterns)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!(".dockerignore: {e}")))?;
    walk_dir(root, "", &matcher, None, visit)
}

fn walk_dir(
    dir: &Path,
    rel_dir: &str,
    matcher: &Matcher,
    parent_info: Option<&[bool]>,
    visit: &mut dyn FnMut(&str, &Path, &Metadata) -> io::Result<()>,
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file name {:?} is not UTF-8", entry.path()),
            ));
        };
        let rel = if rel_dir.is_empty() {
            name.to_string()
        } else {
            format!("{rel_dir}/{name}")
        };
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let (skip, info) = if matcher.patterns.is_empty() {
            (false, Vec::new())
        } else {
            matcher.matches_using_parent(&rel, parent_info)
        };
        if skip {
            if meta.is_dir() && matcher.must_enter_excluded_dir(&rel) {
                walk_dir(&path, &rel, matcher, Some(&info), visit)?;
            }
            continue;
        }
        visit(&rel, &path, &meta)?;
        if meta.is_dir() {
            let info_ref = if matcher.patterns.is_empty() {
                None
            } else {
                Some(info.as_slice())
            };
            walk_dir(&path, &rel, matcher, info_ref, visit)?;
        }
    }
    Ok(())
}

/// The regular files (and symlinks) the context holds, for tests and `--dry-run` style listings.
pub fn context_files(root: &Path, dockerfile: &str) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    walk_context(root, dockerfile, &mut |rel, _p, meta| {
        if !meta.is_dir() {
            out.push(rel.to_string());
        }
        Ok(())
    })?;
    Ok(out)
}

/// Writes into the channel in fixed chunks, blocking when the engine reads slower.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    sent: u64,
    reporter: SharedReporter,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading"))?;
        self.reporter
            .report(Event::ContextProgress { bytes: self.sent });
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    rel: &str,
    path: &Path,
    meta: &Metadata,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("")?;
    header.set_groupname("")?;
    let ft = meta.file_type();
    if ft.is_dir() {
        tar.append_data(&mut header, format!("{rel}/"), io::empty())
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        header.set_size(0);
        tar.append_link(&mut header, rel, target)
    } else if ft.is_file() {
        let file = std::fs::File::open(path)?;
        tar.append_data(&mut header, rel, file)
    } else {
        Ok(()) // sockets, fifos, devices: not sent, as docker does not either
    }
}

/// The `LABEL` instruction that gives the image its labels. The classic builder turns every
/// label passed with the build request into a step of its own (a container each); one
/// instruction appended to the Dockerfile sent in the context does it in one step.
pub fn label_instruction(labels: &HashMap<String, String>) -> Option<String> {
    if labels.is_empty() {
        return None;
    }
    let mut keys: Vec<&String> = labels.keys().collect();
    keys.sort();
    let pairs: Vec<String> = keys
        .into_iter()
        .map(|k| format!("{}={}", quote(k), quote(&labels[k])))
        .collect();
    Some(format!("LABEL {}\n", pairs.join(" ")))
}

fn quote(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' | '$' => vec!['\\', c],
            '\n' | '\r' => vec![' '],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// The Dockerfile as sent: `content` with `extra` appended (on a line of its own).
pub(crate) fn dockerfile_with(mut content: Vec<u8>, extra: &str) -> Vec<u8> {
    if !content.is_empty() && !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    content.extend_from_slice(extra.as_bytes());
    content
}

/// Starts streaming the context of `root` as a tar, the Dockerfile replaced by `dockerfile_as`
/// when given. Returns the byte stream for the engine and the walker's handle, which yields
/// the number of bytes sent or the walk's error.
pub fn stream_context(
    root: PathBuf,
    dockerfile: String,
    dockerfile_as: Option<Vec<u8>>,
    reporter: SharedReporter,
) -> (ContextStream, tokio::task::JoinHandle<io::Result<u64>>) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
    let err_tx = tx.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            sent: 0,
            reporter,
        };
        let mut tar = tar::Builder::new(writer);
        tar.mode(tar::HeaderMode::Complete);
        let result = walk_context(
            &root,
            &dockerfile,
            &mut |rel, path, meta| match &dockerfile_as {
                Some(content) if rel == dockerfile && meta.is_file() => {
                    let mut header = tar::Header::new_gnu();
                    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
                    header.set_uid(0);
                    header.set_gid(0);
                    header.set_size(content.len() as u64);
                    tar.append_data(&mut header, rel, content.as_slice())
                }
                _ => append_entry(&mut tar, rel, path, meta),
            },
        )
        .and_then(|_| tar.into_inner())
        .and_then(|mut w| {
            w.flush()?;
            Ok(w.sent)
        });
        if let Err(e) = &result {
            let _ = err_tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        result
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (Box::pin(stream), handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_one_instruction() {
        let mut l = HashMap::new();
        l.insert("benchctl.issue".to_string(), "PROJ-1".to_string());
        l.insert("benchctl.commit".to_string(), "abc".to_string());
        l.insert("odd".to_string(), "a\"b$c\nd".to_string());
        assert_eq!(
            label_instruction(&l).unwrap(),
            "LABEL \"benchctl.commit\"=\"abc\" \"benchctl.issue\"=\"PROJ-1\" \"odd\"=\"a\\\"b\\$c d\"\n"
        );
        assert_eq!(label_instruction(&HashMap::new()), None);
    }

    #[test]
    fn appended_dockerfile_ends_lines() {
        assert_eq!(
            dockerfile_with(b"FROM scratch".to_vec(), "LABEL a=b\n"),
            b"FROM scratch\nLABEL a=b\n"
        );
    }
}
