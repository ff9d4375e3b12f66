//! Files copied into a created container before it starts (a Compose file's bind mounts of the
//! branch's own files, its secrets and configs): one tar archive, extracted by the engine at
//! the container's root. The engine makes missing parent directories and writes through the
//! container's volumes; nothing on the host is linked.

use crate::engine::{CopyContent, CopySpec};
use crate::{Error, Result};
use std::path::Path;

/// The archive of `copies`, each under its target path.
pub(crate) fn archive(copies: &[CopySpec]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    for c in copies {
        let target = c.target.trim_start_matches('/');
        match &c.content {
            CopyContent::Bytes(b) => file(&mut tar, target, b, c.mode.unwrap_or(0o444), c)?,
            CopyContent::Path(p) if p.is_dir() => dir(&mut tar, p, Path::new(target), c)?,
            CopyContent::Path(p) => path_file(&mut tar, p, target, c)?,
        }
    }
    tar.into_inner()
        .map_err(|e| Error::Engine(format!("cannot write the archive of copied files: {e}")))
}

fn io(p: &Path, e: std::io::Error) -> Error {
    Error::Engine(format!("cannot read {}: {e}", p.display()))
}

fn header(size: u64, mode: u32, c: &CopySpec, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(c.uid.into());
    h.set_gid(c.gid.into());
    h.set_entry_type(kind);
    h.set_mtime(0);
    h
}

fn file(
    tar: &mut tar::Builder<Vec<u8>>,
    target: &str,
    bytes: &[u8],
    mode: u32,
    c: &CopySpec,
) -> Result<()> {
    let mut h = header(bytes.len() as u64, mode, c, tar::EntryType::Regular);
    tar.append_data(&mut h, target, bytes)
        .map_err(|e| Error::Engine(format!("cannot archive `{target}`: {e}")))
}

/// A file of the checkout, with its mode unless the copy sets one.
fn path_file(tar: &mut tar::Builder<Vec<u8>>, p: &Path, target: &str, c: &CopySpec) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(p).map_err(|e| io(p, e))?;
    let bytes = std::fs::read(p).map_err(|e| io(p, e))?;
    let mode = c.mode.unwrap_or(meta.permissions().mode() & 0o777);
    file(tar, target, &bytes, mode, c)
}

/// A directory of the checkout, its links kept as links (checked to stay in the branch).
fn dir(tar: &mut tar::Builder<Vec<u8>>, src: &Path, target: &Path, c: &CopySpec) -> Result<()> {
    let mut h = header(0, 0o755, c, tar::EntryType::Directory);
    tar.append_data(&mut h, target, std::io::empty())
        .map_err(|e| Error::Engine(format!("cannot archive {}: {e}", target.display())))?;
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .map_err(|e| io(src, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = target.join(e.file_name());
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
        if meta.file_type().is_symlink() {
            let to = std::fs::read_link(&path).map_err(|e| io(&path, e))?;
            let mut h = header(0, 0o777, c, tar::EntryType::Symlink);
            tar.append_link(&mut h, &name, &to)
                .map_err(|e| Error::Engine(format!("cannot archive {}: {e}", name.display())))?;
        } else if meta.is_dir() {
            dir(tar, &path, &name, c)?;
        } else {
            path_file(tar, &path, &name.to_string_lossy(), c)?;
        }
    }
    Ok(())
}

/// Puts `copies` into the created container `id`.
pub(crate) async fn upload(docker: &bollard::Docker, id: &str, copies: &[CopySpec]) -> Result<()> {
    if copies.is_empty() {
        return Ok(());
    }
    let copies = copies.to_vec();
    let body = tokio::task::spawn_blocking(move || archive(&copies))
        .await
        .map_err(|e| Error::Engine(format!("archiving copied files failed: {e}")))??;
    let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path("/")
        .build();
    docker
        .upload_to_container(id, Some(opts), bollard::body_full(body.into()))
        .await?;
    Ok(())
}
