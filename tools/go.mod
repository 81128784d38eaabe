module github.com/mycelium-mesh/mycelium/tools

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/creack/pty v1.1.24
	github.com/google/gopacket v1.1.19
	github.com/mycelium-mesh/mycelium/l1-link v0.0.0-00010101000000-000000000000
	github.com/mycelium-mesh/mycelium/l2-seq v0.0.0
	github.com/mycelium-mesh/mycelium/l3-route v0.0.0-00010101000000-000000000000
	github.com/mycelium-mesh/mycelium/l4-apps v0.0.0-00010101000000-000000000000
	github.com/prometheus/client_golang v1.25.0
	github.com/schollz/progressbar/v3 v3.19.1
	github.com/spf13/cobra v1.10.2
	github.com/spf13/pflag v1.0.9
	go.bug.st/serial v1.8.0
	golang.org/x/term v0.48.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mdlayher/genetlink v1.4.0 // indirect
	github.com/mdlayher/netlink v1.11.2 // indirect
	github.com/mdlayher/packet v1.2.0 // indirect
	github.com/mdlayher/socket v0.7.0 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/pandatix/go-abnf v0.5.5 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.74.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
	github.com/mycelium-mesh/mycelium/l2-seq => ../l2-seq
	github.com/mycelium-mesh/mycelium/l3-route => ../l3-route
	github.com/mycelium-mesh/mycelium/l4-apps => ../l4-apps
)
