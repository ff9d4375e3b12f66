//! Attacks of issue 14, each performed for real against the binary (real engine, real HTTP): a
//! branch or a delivery reaches no further than its own bench. One file per kind of attack.

mod deliveries;
mod host;
mod labels;
mod messengers;
mod registry;
mod settings;
mod stacks;
mod stalls;
mod writes;
