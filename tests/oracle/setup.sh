#!/usr/bin/env bash
# Creates (once) the Python environment of kuzet's reference oracle and prints its python.
#
#   tests/oracle/setup.sh            -> /abs/path/target/oracle-venv/bin/python
#
# The venv lives at ${KUZET_ORACLE_VENV:-target/oracle-venv} (relative paths are taken from the
# repository root) and holds exactly the packages pinned in tests/oracle/requirements.txt.
# Idempotent and safe to run from several test processes at once: a flock on "<venv>.lock"
# serialises creation, and a stamp (the hash of requirements.txt) written last marks a
# complete install, so an interrupted install is redone on the next call.
# Everything but the final path goes to stderr. Needs CPython >= 3.11 (KUZET_ORACLE_PYTHON
# picks the interpreter, default python3) and PyPI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${KUZET_ORACLE_VENV:-target/oracle-venv}"
case "$venv" in
/*) ;;
*) venv="$root/$venv" ;;
esac
requirements="$here/requirements.txt"
stamp="$venv/.kuzet-oracle-stamp"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

ready() {
	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]
}

# Fast path without the lock: the stamp is written only after a complete install.
if ready; then
	echo "$venv/bin/python"
	exit 0
fi

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! ready; then
	python="${KUZET_ORACLE_PYTHON:-python3}"
	if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
		echo "oracle setup: $python is older than 3.11 (pysigma-backend-sqlite needs 3.11+)" >&2
		exit 1
	fi
	rm -rf "$venv"
	"$python" -m venv "$venv" >&2
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
		-r "$requirements" >&2
	"$venv/bin/python" -c 'import sigma.backends.sqlite, sigma.collection, re2' >&2
	echo "$want" >"$stamp.tmp"
	mv "$stamp.tmp" "$stamp"
fi
echo "$venv/bin/python"
