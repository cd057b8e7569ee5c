#!/usr/bin/env bash
# Installs what the test suite drives besides cargo: the official Python MCP client and
# Playwright (into the running Python, as the MCP and browser tests call `python3`), schemathesis
# (into its own virtual environment, target/venv-schemathesis, for the API conformance test) and
# axe-core (into target/npm, for the browser test). Safe to run again: it installs only what is
# missing. Debian's chromium, python3-venv and npm are .ci/run's business (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import mcp, playwright' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check -r .ci/requirements-test.txt
fi

venv=target/venv-schemathesis
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements-schemathesis.txt
fi

if [ ! -f target/npm/node_modules/axe-core/axe.min.js ]; then
  npm install --no-save --silent --prefix target/npm axe-core@4.14.1
fi
echo "test tools: mcp, playwright, $("$venv/bin/schemathesis" --version 2>&1), axe-core"
