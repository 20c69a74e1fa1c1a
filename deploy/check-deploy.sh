#!/usr/bin/env bash
# Checks what deploy/ ships, with the real tools (installed by
# deploy/install-deps.sh): every region overlay renders (`kubectl kustomize`)
# and validates against the Kubernetes schemas offline
# (`kubernetes-validate`); project checks on the rendered objects, the
# Dockerfile and the monitoring files (deploy/check_deploy.py); the alert
# rules pass `promtool check rules`. That the metrics they use are exported
# is the Rust test `deploy::exported_metrics` (run by deploy/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The Kubernetes version the manifests are validated against.
K8S_VERSION="${COUPON_K8S_VERSION:-1.30.0}"
PY=target/pyenv/bin/python
out=target/deploy-rendered
rm -rf "$out" && mkdir -p "$out"

for r in us eu ap; do
  kubectl kustomize "deploy/k8s/regions/$r" > "$out/$r.yaml"
done
echo "rendered: $(cd "$out" && echo *.yaml)"
target/pyenv/bin/kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out"/*.yaml \
  deploy/k8s/secrets.example.yaml
echo "kubernetes-validate $K8S_VERSION: ok"
"$PY" deploy/check_deploy.py "$out"
promtool check rules deploy/monitoring/alerts.yml
