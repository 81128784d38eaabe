#!/bin/sh
# mycelium pre-remove: stop the node (its identity in /var/lib/mycelium
# stays: a reinstall is the same node).
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl disable --now mycelium >/dev/null 2>&1 || true
fi
