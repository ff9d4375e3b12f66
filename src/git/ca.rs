//! When libgit2 reads the system's CA certificates. libgit2 starts OpenSSL eagerly, and
//! OpenSSL 3 parses the whole CA bundle there (30-40 ms, more than half of a no-op deploy),
//! though only an https remote needs it. The binary hides the bundle before any thread starts
//! ([`defer`]); libgit2 is given it before the first https remote ([`load_for`]); a program
//! benchctl runs gets the environment it would have had ([`restore_env`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Once, OnceLock};

/// What [`defer`] found: the CA file and directory OpenSSL would have used, and the
/// `SSL_CERT_FILE` the process was started with.
struct Found {
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
    env: Option<OsString>,
}

static FOUND: OnceLock<Found> = OnceLock::new();

/// Hides the system's CA bundle from libgit2's start (`SSL_CERT_FILE=/dev/null`), remembering
/// where it is. Call first thing in `main`, while the process has one thread (it sets an
/// environment variable).
pub fn defer() {
    let probe = openssl_probe::probe();
    let found = Found {
        file: probe.cert_file,
        dir: probe.cert_dir,
        env: std::env::var_os("SSL_CERT_FILE"),
    };
    if FOUND.set(found).is_ok() {
        std::env::set_var("SSL_CERT_FILE", "/dev/null");
    }
}

/// Gives libgit2 the CA certificates before it talks to `location`, when that is an https
/// remote and [`defer`] hid them.
pub(crate) fn load_for(location: &str) {
    if !location.starts_with("https://") {
        return;
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Some(found) = FOUND.get() else { return };
        // SAFETY: process-global libgit2 options, set once before the first https connection.
        unsafe {
            if let Some(file) = &found.file {
                let _ = git2::opts::set_ssl_cert_file(file);
            }
            if let Some(dir) = &found.dir {
                let _ = git2::opts::set_ssl_cert_dir(dir);
            }
        }
    });
}

/// Puts back, for a program benchctl runs, the `SSL_CERT_FILE` the process started with.
pub(crate) fn restore_env(cmd: &mut std::process::Command) {
    if let Some(found) = FOUND.get() {
        match &found.env {
            Some(v) => cmd.env("SSL_CERT_FILE", v),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
    }
}
