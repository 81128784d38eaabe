module github.com/mycelium-mesh/mycelium/l3-route

go 1.26.0

replace (
	github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
	github.com/mycelium-mesh/mycelium/l2-seq => ../l2-seq
)

require (
	github.com/mycelium-mesh/mycelium/l1-link v0.0.0-00010101000000-000000000000
	github.com/mycelium-mesh/mycelium/l2-seq v0.0.0-00010101000000-000000000000
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/google/gopacket v1.1.19 // indirect
	github.com/mdlayher/packet v1.2.0 // indirect
	github.com/mdlayher/socket v0.7.0 // indirect
	go.bug.st/serial v1.8.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
