//! The binary: runs the command line and exits with its code (everything else is the library).

fn main() {
    std::process::exit(benchctl::run(std::env::args_os()));
}
