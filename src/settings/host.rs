//! Settings read from the environment at large: the Tracker field key, the host name in bench
//! addresses (a remote engine's, or this machine's).

use crate::secret::EnvSource;
use crate::{env, Error, Result};

/// The field that holds the bench address: flag > env > `benchLink`.
pub fn bench_field(flag: Option<&str>, envs: &dyn EnvSource) -> Result<String> {
    let field = flag
        .map(str::to_string)
        .or_else(|| envs.get(env::BENCH_FIELD))
        .unwrap_or_else(|| super::keys::FIELD.default.unwrap_or_default().to_string());
    let ok = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(field)
    } else {
        Err(Error::usage(format!(
            "`{}` is not a Tracker field key (letters, digits, `-`, `_`; a local field looks \
             like `<hex>--benchLink`)",
            field.escape_debug()
        )))
    }
}

/// The host name used in bench addresses: flag > env > a remote engine's host > this
/// machine's host name.
pub fn public_host(flag: Option<&str>, envs: &dyn EnvSource) -> String {
    flag.map(str::to_string)
        .or_else(|| envs.get(env::PUBLIC_HOST))
        .or_else(|| remote_engine_host(envs))
        .unwrap_or_else(crate::env::machine_hostname)
}

/// The host name of a remote engine (`DOCKER_HOST=tcp://build.example.com:2376`): benches
/// publish their ports there.
pub fn remote_engine_host(envs: &dyn EnvSource) -> Option<String> {
    crate::engine::endpoint::Endpoint::from_env(&|k| envs.get(k))
        .ok()?
        .remote_host()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn field_keys() {
        let m: HashMap<&str, &str> = HashMap::new();
        assert_eq!(bench_field(None, &m).unwrap(), "benchLink");
        assert_eq!(
            bench_field(Some("6063181a59590578909db920--benchLink"), &m).unwrap(),
            "6063181a59590578909db920--benchLink"
        );
        assert!(bench_field(Some("a/b"), &m).is_err());
    }
}
