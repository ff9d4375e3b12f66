fn main() {
    std::process::exit(benchctl::run(std::env::args_os()));
}
