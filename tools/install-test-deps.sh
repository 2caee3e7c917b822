#!/usr/bin/env bash
# What the browser and automation tests need beyond the locked Python environment, installed once
# and skipped when already there: Debian's Chromium (Playwright drives /usr/bin/chromium; no
# browser download) and a real n8n 1.123 from the npm registry (tools/n8n-harness, ~4 min, 1.8 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing Debian chromium for the dashboard's browser tests"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
tools/n8n-harness install
