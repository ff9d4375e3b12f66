//! The binary: runs the command line and exits with its code (everything else is the library).

fn main() {
    // before any thread: libgit2 reads the CA bundle only for an https remote
    benchctl::git::ca::defer();
    std::process::exit(benchctl::run(std::env::args_os()));
}
