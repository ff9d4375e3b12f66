//! Attacks of issues 14 and 29, each performed for real against the binary (real engine, real HTTP): a
//! branch or a delivery reaches no further than its own bench. One file per kind of attack.

mod branch_files;
mod deliveries;
mod disk;
mod front_door;
mod health;
mod host;
mod idle;
mod images;
mod labels;
mod markdown;
mod messengers;
mod network;
mod registry;
mod repositories;
mod settings;
mod shares;
mod stacks;
mod stalls;
mod teardown_hooks;
mod tunnels;
mod wakes;
mod writes;
