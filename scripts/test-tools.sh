#!/usr/bin/env bash
# Installs what the test suite drives besides cargo: the official Python MCP client and
# Playwright (into a virtual environment, target/venv-test, which the MCP and browser tests run:
# a stock Debian Python refuses packages installed into it, PEP 668), schemathesis (into its own,
# target/venv-schemathesis, for the API conformance test) and axe-core (into target/npm, for the
# browser test). Safe to run again: it installs only what is missing. Debian's chromium,
# python3-venv and npm are .ci/run's business (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

tests_venv=target/venv-test
if ! "$tests_venv/bin/python" -c 'import mcp, playwright' 2>/dev/null; then
  python3 -m venv "$tests_venv"
  "$tests_venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements-test.txt
fi

venv=target/venv-schemathesis
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements-schemathesis.txt
fi

if [ ! -f target/npm/node_modules/axe-core/axe.min.js ]; then
  npm install --no-save --silent --prefix target/npm axe-core@4.14.1
fi
echo "test tools: mcp, playwright (in $tests_venv), $("$venv/bin/schemathesis" --version 2>&1), axe-core"
