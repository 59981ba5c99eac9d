#!/usr/bin/env sh
# Refresh the pinned environments from pyproject.toml: `sh requirements/lock.sh`.
# Needs uv (`python3 -m pip install uv` if it is missing). CI installs only
# what these files say, with their hashes, so a fresh machine gets exactly the
# versions the tests last passed with. Run .ci/run after refreshing.
#
#   test.txt     newest versions: runtime + the dev group (tests, lint, build)
#   lowest.txt   the lowest versions pyproject.toml claims (lowest-direct):
#                runtime + the test group, without the botocore
#                instrumentation (its coexistence test needs a release far
#                newer than the lowest OpenTelemetry API; see lowest-excludes.txt)
#   runtime.txt  newest runtime dependencies alone, for the installed-wheel check
#   upstream-sdists.txt (not written here) the upstream suites of each pinned
#                django, aiosmtplib and django-anymail; when a refresh moves one,
#                add its line: python -m tests.upstream.sources pin <name> <version>
#                (django-anymail: ... vendor <git checkout> <tag> django-anymail <version>)
set -eu
cd "$(dirname "$0")/.."
uv="${UV:-uv}"
command -v "$uv" >/dev/null 2>&1 || uv="python3 -m uv"
# CI's Python; the pins hold for that version (see CONTRIBUTING.md).
common="--python-version 3.11 --generate-hashes --quiet --no-header"
$uv pip compile pyproject.toml --group dev $common -o requirements/test.txt "$@"
$uv pip compile pyproject.toml --group test --resolution lowest-direct \
  --excludes requirements/lowest-excludes.txt $common -o requirements/lowest.txt "$@"
$uv pip compile pyproject.toml $common -o requirements/runtime.txt "$@"
