#!/usr/bin/env bash
# What the browser, automation and scale-out tests need beyond the locked Python environment,
# installed once and skipped when already there, all from Debian's packages except n8n:
# - Chromium (Playwright drives /usr/bin/chromium; no browser download);
# - PostgreSQL's server (tests/scale starts its own on loopback with initdb and pg_ctl from
#   /usr/lib/postgresql/<version>/bin; Debian's own cluster is not used);
# - a real n8n 1.123 from the npm registry (tools/n8n-harness, ~4 min, 1.8 GB).
# Java 17 (Spark, also its standalone cluster in tests/scale) is a prerequisite of the project.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=()
if ! command -v chromium >/dev/null 2>&1; then
  packages+=(chromium chromium-driver)
fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  packages+=(postgresql)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing Debian ${packages[*]} for the browser and scale-out tests"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
tools/n8n-harness install
