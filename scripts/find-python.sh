#!/usr/bin/env sh
# Print the path of a Python >= 3.12 interpreter (PyMC 6 / ArviZ 1 need it).
# Plain `python3` may be older and pyenv shims fail for inactive versions, so each
# candidate is actually run before it is accepted.
for p in "${PYTHON:-}" python3.12 python3.13 python3 \
         "$HOME"/.pyenv/versions/3.12*/bin/python3 "$HOME"/.pyenv/versions/3.13*/bin/python3 \
         /root/.pyenv/versions/3.12*/bin/python3 /usr/local/bin/python3.12 /usr/bin/python3.12; do
  [ -n "$p" ] || continue
  if "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
    "$p" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "error: no Python >= 3.12 found; install one (e.g. pyenv install 3.12) or set PYTHON=/path/to/python3.12" >&2
exit 1
