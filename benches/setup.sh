#!/usr/bin/env bash
# Installs what `cargo bench --bench speed` compares harden with: Ansible, pinned, from PyPI,
# into a virtual environment under /var/cache/harden-bench (python3-venv from Debian's
# archive when missing). Idempotent: a complete environment is left as it is.
set -euo pipefail

version=10.7.0 # the `ansible` package: ansible-core 2.17 with community.general
venv=/var/cache/harden-bench/ansible-$version

if [ -x "$venv/bin/ansible-playbook" ] && [ -e "$venv/.complete" ]; then
    exit 0
fi
if ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "ansible==$version"
touch "$venv/.complete"
echo "$venv"
