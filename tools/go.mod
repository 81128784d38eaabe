module github.com/mycelium-mesh/mycelium/tools

go 1.26.0

require (
	github.com/mycelium-mesh/mycelium/l2-seq v0.0.0
	github.com/mycelium-mesh/mycelium/l3-route v0.0.0-00010101000000-000000000000
	github.com/spf13/cobra v1.10.2
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)

replace (
	github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
	github.com/mycelium-mesh/mycelium/l2-seq => ../l2-seq
	github.com/mycelium-mesh/mycelium/l3-route => ../l3-route
	github.com/mycelium-mesh/mycelium/l4-apps => ../l4-apps
)
