#!/usr/bin/env bash
# Runs deflect's whole test suite: formatting, lints, unit and black-box tests.
# Tests talk to a real Redis on 127.0.0.1:6379; this script starts one when none is
# running (installing Debian's redis-server if it is missing). The outage and TLS tests
# start redis-server processes of their own on free ports. The widget's browser tests
# drive Debian's headless Chromium through chromedriver (installed here when missing;
# nothing downloads a browser) and leave screenshots in target/browser-tests/. The files
# in deploy/ are validated against the Kubernetes and Compose schemas.
set -euo pipefail
cd "$(dirname "$0")/.."

redis_answers() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
  else
    (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The outage and TLS tests run redis-server processes of their own, so the command must
# be there even when a Redis already answers on 6379.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (Debian package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

if ! redis_answers; then
  echo "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 50); do redis_answers && break; sleep 0.1; done
  redis_answers || { echo "redis did not start" >&2; exit 1; }
fi

# The TLS test makes a self-signed certificate with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
  echo "installing openssl (Debian package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi

# The widget's end-to-end tests (tests/api/widget_browser.rs) need Chromium and
# ChromeDriver. When they cannot be installed (no root, no network), the suite still runs
# and those tests fail, saying what is missing.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium and chromium-driver (Debian packages)"
  if ! { as_root apt-get update -qq &&
         as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
    echo "warning: could not install chromium and chromium-driver; the browser tests will fail" >&2
  fi
fi

# The deploy files are checked against the Kubernetes and Compose schemas
# (tests/deploy/check_deploy.py) with pinned Python packages in a virtualenv under target/.
deploy_check_venv=target/deploy-check/venv
if ! "$deploy_check_venv/bin/python" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
  echo "installing the deploy checker's Python packages into $deploy_check_venv"
  if ! python3 -m venv "$deploy_check_venv" 2>/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$deploy_check_venv"
  fi
  "$deploy_check_venv/bin/pip" install --quiet kubernetes-validate==1.31.0 jsonschema==4.26.0 PyYAML==6.0.3
fi
"$deploy_check_venv/bin/python" tests/deploy/check_deploy.py

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --lib --bins --tests
