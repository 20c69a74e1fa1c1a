#!/usr/bin/env python3
"""Project checks on what deploy/ ships, run by deploy/check-deploy.sh after
`kubectl kustomize` rendered every region overlay into a folder.

Kubernetes objects (per rendered overlay): every workload container runs as
non-root with requests set; long-running ones have /livez and /readyz
probes; nodes run two or more replicas behind a Service and a budget; the
NetworkPolicy selects the node pods and admits routers (never everyone);
every COUPON_* variable is one the binaries read, secrets come from Secrets,
and no Secret object is rendered; the raft bootstrap agrees with the
overlays. Image: the Dockerfile copies exactly the workspace's binaries and
builds them with the release command of deploy/dev-up.sh. Monitoring: the
alert rules and the dashboard parse, and every metric they name is a
`coupon_*` metric (the Rust test deploy::exported_metrics checks that a
running cluster exports each of them).

Usage: check_deploy.py RENDERED_DIR   (files <region>.yaml)
"""

import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARIES = {"coupon-node", "coupon-router", "coupon-raft", "couponctl"}
SECRET_ENV = re.compile(r"(DATABASE_URL|REDIS_URL|SECRET|TOKEN)$")
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "changes",
    "histogram_quantile", "abs", "scalar", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "label_values", "humanizePercentage",
}

errors = []


def fail(where, what):
    errors.append(f"{where}: {what}")


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def config_env_names():
    """Every `env = "COUPON_…"` the binaries' clap configs read."""
    names = set()
    for crate in ("node", "router", "raft"):
        for src in (ROOT / crate / "src").rglob("*.rs"):
            names.update(re.findall(r'env\s*=\s*"(COUPON_[A-Z0-9_]+)"', src.read_text()))
    return names


def workload_pods(docs):
    for d in docs:
        kind = d["kind"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            yield d, d["spec"]["template"]


def check_containers(region, docs, env_names):
    for w, tpl in workload_pods(docs):
        where = f"{region} {w['kind']}/{w['metadata']['name']}"
        spec = tpl["spec"]
        pod_sc = spec.get("securityContext", {})
        for c in spec.get("initContainers", []) + spec["containers"]:
            cw = f"{where} container {c['name']}"
            sc = {**pod_sc, **c.get("securityContext", {})}
            if sc.get("runAsNonRoot") is not True or sc.get("runAsUser", 0) == 0:
                fail(cw, "must run as non-root (runAsNonRoot and a non-zero runAsUser)")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(cw, "allowPrivilegeEscalation must be false")
            req = c.get("resources", {}).get("requests", {})
            if not ("cpu" in req and "memory" in req):
                fail(cw, "resource requests (cpu and memory) must be set")
            cmd = c.get("command") or []
            if not cmd or (cmd[0] not in BINARIES and cmd[0] != "/bin/sh"):
                fail(cw, f"command {cmd} names no binary of the image")
            if w["kind"] != "Job":
                live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
                ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path", "")
                if live != "/livez":
                    fail(cw, "liveness probe must be GET /livez")
                if not ready.startswith("/readyz"):
                    fail(cw, "readiness probe must be GET /readyz")
            for e in c.get("env", []):
                name = e["name"]
                if name.startswith("COUPON_") and name not in env_names:
                    fail(cw, f"{name} is not a variable any binary reads")
                if SECRET_ENV.search(name) and "secretKeyRef" not in e.get("valueFrom", {}):
                    fail(cw, f"{name} must come from a Secret")


def by_component(docs, kind, component):
    return [
        d for d in docs
        if d["kind"] == kind and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]


def pod_labels(w):
    return w["spec"]["template"]["metadata"].get("labels", {})


def check_topology(region, docs):
    services = [d for d in docs if d["kind"] == "Service"]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    if any(d["kind"] == "Secret" for d in docs):
        fail(region, "a Secret is rendered: secret values are never committed")
    for comp, kind in (("node", "Deployment"), ("router", "Deployment"), ("raft", "StatefulSet")):
        ws = by_component(docs, kind, comp)
        if len(ws) != 1:
            fail(region, f"expected one {comp} {kind}, found {len(ws)}")
            continue
        w = ws[0]
        labels = pod_labels(w)
        if labels.get("coupon/region") != region:
            fail(region, f"{comp} pods must carry coupon/region={region}")
        svcs = [s for s in services if labels_match(s["spec"].get("selector"), labels)]
        if not svcs:
            fail(region, f"no Service selects the {comp} pods")
        if not any(labels_match(p["spec"]["selector"].get("matchLabels"), labels) for p in pdbs):
            fail(region, f"no PodDisruptionBudget covers the {comp} pods")
        if comp == "node" and w["spec"].get("replicas", 1) < 2:
            fail(region, "nodes need two or more replicas")
        if comp == "router" and not any(s["spec"].get("type") == "LoadBalancer" for s in svcs):
            fail(region, "routers need the region's public (LoadBalancer) Service")
        if comp == "raft":
            if not w["spec"].get("volumeClaimTemplates"):
                fail(region, "the raft member needs a persistent volume")
            headless = [s for s in svcs if s["metadata"]["name"] == w["spec"].get("serviceName")]
            if not headless or headless[0]["spec"].get("clusterIP") != "None":
                fail(region, "the raft StatefulSet needs its headless Service (stable identity)")
            for s in svcs:
                if not s["spec"].get("publishNotReadyAddresses"):
                    fail(region, f"raft Service {s['metadata']['name']} must publish not-ready members")
    check_network_policy(region, docs)


def check_network_policy(region, docs):
    nodes = by_component(docs, "Deployment", "node")
    routers = by_component(docs, "Deployment", "router")
    if not nodes or not routers:
        return
    node_labels, router_labels = pod_labels(nodes[0]), pod_labels(routers[0])
    pols = [
        d for d in docs
        if d["kind"] == "NetworkPolicy" and labels_match(d["spec"]["podSelector"].get("matchLabels"), node_labels)
    ]
    if not pols:
        fail(region, "no NetworkPolicy selects the node pods")
        return
    for p in pols:
        where = f"{region} NetworkPolicy/{p['metadata']['name']}"
        if "Ingress" not in p["spec"].get("policyTypes", []):
            fail(where, "must restrict Ingress")
        rules = p["spec"].get("ingress", [])
        admits_routers = False
        for r in rules:
            sources = r.get("from")
            if not sources:
                fail(where, "a rule without `from` admits everyone")
                continue
            for s in sources:
                sel = s.get("podSelector")
                if sel is not None:
                    m = sel.get("matchLabels")
                    if not m:
                        fail(where, "a podSelector that matches every pod")
                    elif labels_match(m, router_labels):
                        admits_routers = True
                    else:
                        fail(where, f"admits pods other than routers: {m}")
        if not admits_routers:
            fail(where, "does not admit this region's routers")


def check_config_and_bootstrap(rendered):
    """Every overlay names the same raft members; the bootstrap agrees."""
    members = {}
    raft_urls = set()
    for region, docs in rendered.items():
        cms = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
        cfg, member = cms.get("coupon-config", {}), cms.get("coupon-raft-member", {})
        if cfg.get("COUPON_REGION") != region:
            fail(region, f"COUPON_REGION is {cfg.get('COUPON_REGION')!r}")
        if not cfg.get("COUPON_SERVICE_KID", "").startswith(f"{region}-"):
            fail(region, "COUPON_SERVICE_KID must be one of the region's kids (<region>-<n>)")
        raft_urls.add(cfg.get("COUPON_RAFT_URLS"))
        members[int(member.get("COUPON_RAFT_NODE_ID", "0"))] = member.get("COUPON_RAFT_ADVERTISE")
    if len(raft_urls) != 1:
        fail("overlays", f"COUPON_RAFT_URLS differ between regions: {raft_urls}")
    urls = set((raft_urls.pop() or "").split(","))
    if set(members.values()) != urls or 0 in members:
        fail("overlays", f"raft members {members} do not match COUPON_RAFT_URLS {sorted(urls)}")
    jobs = [(r, d) for r, docs in rendered.items() for d in docs if d["kind"] == "Job"]
    if len(jobs) != 1:
        fail("overlays", f"exactly one region bootstraps raft; found {len(jobs)} bootstrap Jobs")
        return
    region = jobs[0][0]
    cms = {d["metadata"]["name"]: d.get("data", {}) for d in rendered[region] if d["kind"] == "ConfigMap"}
    boot = cms.get("coupon-bootstrap", {})
    init = json.loads(boot.get("members.json", "{}"))
    declared = {m["node_id"]: m["addr"] for m in init.get("members", [])}
    if declared != members:
        fail(region, f"bootstrap members {declared} differ from the overlays' {members}")
    regs = json.loads(boot.get("regions.json", "{}"))
    if {r["id"] for r in regs.get("regions", [])} != set(rendered):
        fail(region, "bootstrap regions.json must list every overlay's region")
    if not regs.get("request_id"):
        fail(region, "regions.json needs a fixed request_id (the init is retried)")


def check_secrets_example(rendered):
    """Every Secret (and key) the manifests use is in secrets.example.yaml,
    with placeholder values only."""
    example = {}
    for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "secrets.example.yaml").read_text()):
        if d:
            data = d.get("stringData", {})
            example[d["metadata"]["name"]] = set(data)
            for k, v in data.items():
                if "CHANGE-ME" not in v:
                    fail("secrets.example.yaml", f"{d['metadata']['name']}.{k} is not an obvious placeholder")
    for region, docs in rendered.items():
        for w, tpl in workload_pods(docs):
            spec = tpl["spec"]
            used = {}
            for c in spec["containers"]:
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        used.setdefault(ref["name"], set()).add(ref["key"])
            for v in spec.get("volumes", []):
                if "secret" in v:
                    used.setdefault(v["secret"]["secretName"], set())
            for name, keys in used.items():
                if name not in example:
                    fail(region, f"{w['metadata']['name']} uses Secret {name}, missing from secrets.example.yaml")
                elif not keys <= example[name]:
                    fail(region, f"Secret {name} lacks {sorted(keys - example[name])} in secrets.example.yaml")


def workspace_bins():
    bins = set()
    for toml in ROOT.glob("*/Cargo.toml"):
        text = toml.read_text()
        bins.update(re.findall(r'\[\[bin\]\]\s*\nname\s*=\s*"([^"]+)"', text))
        pkg = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)
        if pkg and (toml.parent / "src" / "main.rs").exists():
            bins.add(pkg.group(1))
    return bins


def check_dockerfile():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = set(re.findall(r"target/release/([A-Za-z0-9_-]+)", text))
    installed = set(re.findall(r"/out/([A-Za-z0-9_-]+)", text))
    bins = workspace_bins()
    if copied != BINARIES or installed != BINARIES:
        fail("Dockerfile", f"copies {sorted(copied)} / installs {sorted(installed)}, want {sorted(BINARIES)}")
    for b in copied | installed:
        if b not in bins:
            fail("Dockerfile", f"{b} is not a bin target of the workspace ({sorted(bins)})")
    dev_up = (ROOT / "deploy" / "dev-up.sh").read_text()
    release = re.search(r"cargo build --release --workspace --bins", dev_up)
    if not release or "cargo build --release --workspace --bins" not in text:
        fail("Dockerfile", "must build with the release command of deploy/dev-up.sh")
    if re.search(r"^\s*(ENV|ARG)\s+\S*(SECRET|TOKEN|PASSWORD|DATABASE_URL|REDIS_URL)", text, re.M):
        fail("Dockerfile", "bakes a secret-looking variable into the image")
    if not re.search(r"^USER\s+(?!0\b|root\b)\S+", text, re.M):
        fail("Dockerfile", "the runtime must switch to a non-root USER")


def metric_names(expr):
    """Identifiers of a PromQL expression that are neither functions,
    keywords, label names nor label values."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)
    return {w for w in words if w not in PROMQL_WORDS}


def check_monitoring():
    mon = ROOT / "deploy" / "monitoring"
    rules = yaml.safe_load((mon / "alerts.yml").read_text())
    seen = set()
    for g in rules["groups"]:
        for r in g["rules"]:
            where = f"alerts.yml {r.get('alert')}"
            if r.get("alert") in seen:
                fail(where, "duplicate alert name")
            seen.add(r.get("alert"))
            if r.get("labels", {}).get("severity") not in ("warning", "critical"):
                fail(where, "needs severity warning|critical")
            if not r.get("annotations", {}).get("summary"):
                fail(where, "needs a summary")
            for m in metric_names(r["expr"]):
                if not m.startswith("coupon_"):
                    fail(where, f"uses {m}, not a metric of the project")
    dash = json.loads((mon / "grafana-dashboard.json").read_text())
    ids = set()
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    if not panels:
        fail("dashboard", "no panels")
    for p in dash["panels"]:
        if p["id"] in ids:
            fail("dashboard", f"duplicate panel id {p['id']}")
        ids.add(p["id"])
    for p in panels:
        if not p.get("targets"):
            fail(f"dashboard panel {p['title']}", "has no query")
        for t in p.get("targets", []):
            for m in metric_names(t["expr"].replace("$region", "")):
                if not m.startswith("coupon_"):
                    fail(f"dashboard panel {p['title']}", f"uses {m}, not a metric of the project")
    scrape = yaml.safe_load((mon / "prometheus.yml").read_text())
    if "alerts.yml" not in scrape.get("rule_files", []):
        fail("prometheus.yml", "must load alerts.yml")
    targets = {
        rc.get("target_label")
        for job in scrape["scrape_configs"]
        for rc in job.get("relabel_configs", [])
    }
    for label in ("pod_region", "component", "pod"):
        if label not in targets:
            fail("prometheus.yml", f"the rules group by `{label}`: the scrape must set it")


def main():
    rendered_dir = pathlib.Path(sys.argv[1])
    env_names = config_env_names()
    rendered = {}
    for f in sorted(rendered_dir.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        rendered[f.stem] = docs
        check_containers(f.stem, docs, env_names)
        check_topology(f.stem, docs)
    if set(rendered) != {"us", "eu", "ap"}:
        fail("overlays", f"rendered {sorted(rendered)}, want us, eu, ap")
    check_config_and_bootstrap(rendered)
    check_secrets_example(rendered)
    check_dockerfile()
    check_monitoring()
    for e in errors:
        print(f"FAIL  {e}")
    if errors:
        print(f"{len(errors)} deploy check(s) failed")
        return 1
    print(f"deploy checks passed ({', '.join(sorted(rendered))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
