//! The deployment files parse as YAML and carry what Kubernetes and Compose
//! require: checked field by field, so a typo in a manifest fails here, not
//! on an election-night rollout.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn load(rel: &str) -> Vec<Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn s<'a>(y: &'a Yaml, path: &[&str]) -> &'a str {
    get(y, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} must be a string"))
}

fn get<'a>(y: &'a Yaml, path: &[&str]) -> &'a Yaml {
    let mut cur = y;
    for p in path {
        cur = &cur[*p];
        assert!(!cur.is_badvalue(), "missing field {path:?}");
    }
    cur
}

#[test]
fn kubernetes_manifests_have_the_required_fields() {
    let docs = load("deploy/k8s/rekap.yaml");
    let by_kind = |kind: &str| {
        docs.iter()
            .filter(|d| d["kind"].as_str() == Some(kind))
            .collect::<Vec<_>>()
    };
    for d in &docs {
        s(d, &["apiVersion"]);
        s(d, &["kind"]);
        s(d, &["metadata", "name"]);
    }
    let services = by_kind("Service");
    let headless = services
        .iter()
        .find(|svc| svc["spec"]["clusterIP"].as_str() == Some("None"))
        .expect("a headless Service");
    assert_eq!(
        get(headless, &["spec", "publishNotReadyAddresses"]).as_bool(),
        Some(true)
    );
    let sets = by_kind("StatefulSet");
    assert_eq!(sets.len(), 1);
    let set = sets[0];
    assert_eq!(s(set, &["apiVersion"]), "apps/v1");
    assert_eq!(
        s(set, &["spec", "serviceName"]),
        s(headless, &["metadata", "name"])
    );
    assert_eq!(get(set, &["spec", "replicas"]).as_i64(), Some(3));
    // The selector must match the pod template's labels, and the Services'.
    let selector = get(set, &["spec", "selector", "matchLabels"])
        .as_hash()
        .expect("matchLabels");
    let labels = get(set, &["spec", "template", "metadata", "labels"])
        .as_hash()
        .expect("labels");
    for (k, v) in selector {
        assert_eq!(
            labels.get(k),
            Some(v),
            "template labels must include the selector"
        );
        for svc in &services {
            assert_eq!(
                svc["spec"]["selector"][k.as_str().unwrap()],
                *v,
                "Service selector"
            );
        }
    }
    let containers = get(set, &["spec", "template", "spec", "containers"])
        .as_vec()
        .expect("containers");
    let c = &containers[0];
    s(c, &["name"]);
    s(c, &["image"]);
    // The kubelet's own gRPC probe cannot do TLS: the probe runs the health
    // check with a certificate from the Secret.
    let probe: Vec<&str> = get(c, &["readinessProbe", "exec", "command"])
        .as_vec()
        .expect("exec probe")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(probe.contains(&"health") && probe.contains(&"127.0.0.1:7000"));
    let pod = get(set, &["spec", "template", "spec"]);
    let secret = get(
        &get(pod, &["volumes"]).as_vec().unwrap()[0],
        &["secret", "secretName"],
    );
    assert_eq!(secret.as_str(), Some("rekap-certs"));
    let env: Vec<&str> = get(c, &["env"])
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for required in [
        "REKAP_NODE_ID",
        "REKAP_ADVERTISE",
        "REKAP_INITIAL_CLUSTER",
        "REKAP_DATA_DIR",
        "REKAP_CERTS_DIR",
        "REKAP_INITIAL_ADMIN",
    ] {
        assert!(env.contains(&required), "env {required}");
    }
    let mount = &get(c, &["volumeMounts"]).as_vec().unwrap()[0];
    let claims = get(set, &["spec", "volumeClaimTemplates"])
        .as_vec()
        .expect("volume claims");
    assert_eq!(s(mount, &["name"]), s(&claims[0], &["metadata", "name"]));
    s(&claims[0], &["spec", "resources", "requests", "storage"]);
    assert!(get(&claims[0], &["spec", "accessModes"]).as_vec().is_some());
}

#[test]
fn compose_file_defines_three_healthy_persistent_nodes() {
    let doc = &load("deploy/docker-compose.yml")[0];
    let services = get(doc, &["services"]).as_hash().expect("services");
    assert_eq!(
        services.len(),
        5,
        "a certs step, three nodes and the caching front"
    );
    let certs = &doc["services"]["certs"];
    let entry: Vec<&str> = get(certs, &["entrypoint"])
        .as_vec()
        .expect("certs entrypoint")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&entry[1..3], &["certs", "cluster"]);
    let volumes = get(doc, &["volumes"]).as_hash().expect("named volumes");
    let web = &doc["services"]["web"];
    assert_eq!(
        s(web, &["depends_on", "certs", "condition"]),
        "service_completed_successfully"
    );
    assert!(entry.contains(&"--web"), "the front gets its certificate");
    let front_mounts = get(web, &["volumes"]).as_vec().expect("web volumes");
    assert!(
        front_mounts[0]
            .as_str()
            .unwrap()
            .ends_with("/web:/certs:ro"),
        "the front mounts its certificate read-only"
    );
    for (name, svc) in services
        .iter()
        .filter(|(n, _)| n.as_str().is_some_and(|n| n.starts_with("rekap")))
    {
        let name = name.as_str().unwrap();
        assert_eq!(
            s(svc, &["depends_on", "certs", "condition"]),
            "service_completed_successfully",
            "{name} waits for its certificates"
        );
        s(svc, &["image"]);
        assert!(
            get(svc, &["healthcheck", "test"]).as_vec().is_some(),
            "{name} health check"
        );
        let env = get(svc, &["environment"]);
        assert_eq!(
            s(env, &["REKAP_ADVERTISE"]),
            format!("{name}:7000"),
            "{name} is reached by service name"
        );
        assert!(s(env, &["REKAP_INITIAL_CLUSTER"]).contains(&format!("={name}:7000")));
        s(env, &["REKAP_INITIAL_ADMIN"]);
        let n = name.trim_start_matches("rekap");
        assert!(
            entry.contains(&format!("{n}={name},rekap,127.0.0.1,localhost").as_str()),
            "{name}'s certificate names its service, the name the front checks, and loopback (the health check)"
        );
        let mounts = get(svc, &["volumes"]).as_vec().unwrap();
        assert!(
            mounts.iter().any(|m| m
                .as_str()
                .unwrap()
                .ends_with(&format!("/node-{n}:/certs:ro"))),
            "{name} mounts its certificates read-only"
        );
        let vol = mounts[0].as_str().unwrap();
        let (named, path) = vol.split_once(':').unwrap();
        assert_eq!(path, "/data");
        assert!(
            volumes.contains_key(&Yaml::String(named.into())),
            "{named} is a named volume"
        );
        assert!(
            !get(svc, &["ports"]).as_vec().unwrap().is_empty(),
            "{name} publishes its client port"
        );
    }
}
