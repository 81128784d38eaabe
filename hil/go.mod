module github.com/mycelium-mesh/mycelium/hil

go 1.26.4

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/creack/pty v1.1.24
	github.com/mdlayher/packet v1.2.0
	github.com/mycelium-mesh/mycelium/l1-link v0.0.0-00010101000000-000000000000
	github.com/mycelium-mesh/mycelium/l2-seq v0.0.0-00010101000000-000000000000
	go.bug.st/serial v1.8.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/google/gopacket v1.1.19 // indirect
	github.com/mdlayher/socket v0.7.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
)

replace (
	github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
	github.com/mycelium-mesh/mycelium/l2-seq => ../l2-seq
	github.com/mycelium-mesh/mycelium/l3-route => ../l3-route
	github.com/mycelium-mesh/mycelium/l4-apps => ../l4-apps
)
