//! A Compose service's extras ([`ContainerExtras`]) as Docker's host configuration: the keys
//! run as written, on top of a bench's restricted defaults (its limits, dropped capabilities,
//! no new privileges), and what the operator allowed.

use crate::engine::{ContainerExtras, Namespace};
use bollard::models::{HostConfig, ResourcesUlimits};

/// A namespace in Docker's words (`host`, `container:<name>`, `none`).
pub(crate) fn namespace(ns: &Namespace) -> String {
    match ns {
        Namespace::Host => "host".into(),
        Namespace::Container(c) => format!("container:{c}"),
        Namespace::Word(w) => w.clone(),
    }
}

/// `x`'s ulimits as the engine takes them (a container's or a swarm task's).
pub(crate) fn ulimits(x: &ContainerExtras) -> Option<Vec<ResourcesUlimits>> {
    (!x.ulimits.is_empty()).then(|| {
        x.ulimits
            .iter()
            .map(|(n, soft, hard)| ResourcesUlimits {
                name: Some(n.clone()),
                soft: Some(*soft),
                hard: Some(*hard),
            })
            .collect()
    })
}

/// `base` (a bench's restricted host configuration) with `x` applied.
pub(crate) fn host_config(x: &ContainerExtras, base: HostConfig) -> HostConfig {
    let mut cap_drop = base.cap_drop.clone().unwrap_or_default();
    cap_drop.extend(x.cap_drop.iter().cloned());
    let mut security_opt = base.security_opt.clone().unwrap_or_default();
    security_opt.extend(x.security_opt.iter().cloned());
    // `privileged` is the operator's to allow; then dropping every capability would undo it
    // a capability the service drops is not added back (the engine adds after it drops)
    let mut cap_add = base.cap_add.clone().unwrap_or_default();
    cap_add.retain(|c| !x.cap_drop.contains(c));
    let (cap_drop, cap_add) = if x.privileged {
        (Vec::new(), Some(cap_add))
    } else {
        (cap_drop, Some(cap_add))
    };
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    HostConfig {
        init: x.init.or(base.init),
        readonly_rootfs: Some(x.read_only),
        shm_size: x.shm_size,
        ulimits: ulimits(x),
        sysctls: (!x.sysctls.is_empty()).then(|| x.sysctls.iter().cloned().collect()),
        group_add: list(&x.group_add),
        extra_hosts: list(&x.extra_hosts),
        dns: list(&x.dns),
        dns_options: list(&x.dns_options),
        dns_search: list(&x.dns_search),
        cap_drop: Some(cap_drop),
        cap_add,
        pid_mode: x.pid.as_ref().map(namespace),
        ipc_mode: x.ipc.as_ref().map(namespace),
        uts_mode: x.uts_host.then(|| "host".into()),
        userns_mode: x.userns_host.then(|| "host".into()),
        cgroupns_mode: x
            .cgroup_host
            .then_some(bollard::models::HostConfigCgroupnsModeEnum::HOST),
        volumes_from: list(&x.volumes_from),
        privileged: Some(x.privileged),
        devices: (!x.devices.is_empty()).then(|| {
            x.devices
                .iter()
                .map(|d| {
                    let mut p = d.splitn(3, ':');
                    let host = p.next().unwrap_or_default().to_string();
                    let inside = p
                        .next()
                        .filter(|s| !s.is_empty())
                        .unwrap_or(&host)
                        .to_string();
                    bollard::models::DeviceMapping {
                        path_on_host: Some(host),
                        path_in_container: Some(inside),
                        cgroup_permissions: Some(p.next().unwrap_or("rwm").to_string()),
                    }
                })
                .collect()
        }),
        security_opt: Some(security_opt),
        runtime: x.runtime.clone(),
        binds: list(&x.binds),
        memory_reservation: x.memory_reservation,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_capability_is_not_added_back_and_names_become_namespaces() {
        let base = crate::engine::docker::restricted(&Default::default(), &[]);
        let x = ContainerExtras {
            cap_drop: vec!["KILL".into()],
            pid: Some(Namespace::Container("benchctl-p-1-svc-db".into())),
            ..Default::default()
        };
        let h = host_config(&x, base);
        let added = h.cap_add.unwrap();
        assert!(!added.contains(&"KILL".to_string()) && added.contains(&"CHOWN".to_string()));
        assert_eq!(h.cap_drop.unwrap(), ["ALL", "KILL"]);
        assert_eq!(h.pid_mode.as_deref(), Some("container:benchctl-p-1-svc-db"));
        assert_eq!(h.security_opt.unwrap(), ["no-new-privileges:true"]);
    }
}
