#!/bin/sh
# mycelium post-install: the system user and group, the node's identity
# (once), systemd told of the unit. The node is not started: its
# configuration (/etc/mycelium/mycelium.toml) wants a look first.
set -e
if ! getent group mycelium >/dev/null; then
	addgroup --system mycelium >/dev/null
fi
if ! getent passwd mycelium >/dev/null; then
	adduser --system --ingroup mycelium --home /var/lib/mycelium --no-create-home \
		--shell /usr/sbin/nologin --gecos "Mycelium mesh node" mycelium >/dev/null
fi
install -d -o mycelium -g mycelium -m 0700 /var/lib/mycelium
if [ ! -e /var/lib/mycelium/identity.pem ]; then
	/usr/bin/mycelium init --key-only --dir /var/lib/mycelium >/dev/null 2>&1
	chown mycelium:mycelium /var/lib/mycelium/identity.pem
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
echo "mycelium: edit /etc/mycelium/mycelium.toml, then: systemctl enable --now mycelium"
echo "mycelium: add yourself to the mycelium group to use mycelium status/ping without sudo"
