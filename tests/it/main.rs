//! The integration tests, one binary (cargo's `testsuite` layout): the support module is
//! compiled once and the crate linked once. Each module is a group ([`support::group`]): tests
//! of one module may run in parallel, tests of different modules never at the same time (some
//! restart the engine, make it a swarm node, or count what it holds).

mod support;

mod attacks;
mod build;
mod buildkit;
mod cap;
mod code_host;
mod compose;
mod compose_corpus;
mod compose_keys;
mod compose_samples;
mod config;
mod dashboard;
mod deploy;
mod dockerignore;
mod engine_host;
mod git;
mod hostile;
mod inspect;
mod leftovers;
mod lifecycle;
mod lifecycle_gc;
mod pin;
mod proxy_redeploy;
mod random_run;
mod ready;
mod restart_engine;
mod routing;
mod serve_benches;
mod serve_gc;
mod serve_hooks;
mod serve_idle;
mod serve_queue;
mod serve_sleep;
mod shell;
mod sleep;
mod stack_deploy;
mod stacks;
mod swarm;
mod swarm_nodes;
mod swarm_registry;
mod swarm_routes;
mod swarm_sleep;
mod templates;
mod tracker;
mod tracker_comments;
mod tracker_init;
