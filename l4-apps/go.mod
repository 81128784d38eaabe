module github.com/mycelium-mesh/mycelium/l4-apps

go 1.26.0

require (
	github.com/mycelium-mesh/mycelium/l1-link v0.0.0-00010101000000-000000000000
	github.com/mycelium-mesh/mycelium/l2-seq v0.0.0
	github.com/mycelium-mesh/mycelium/l3-route v0.0.0-00010101000000-000000000000
)

replace (
	github.com/mycelium-mesh/mycelium/l1-link => ../l1-link
	github.com/mycelium-mesh/mycelium/l2-seq => ../l2-seq
	github.com/mycelium-mesh/mycelium/l3-route => ../l3-route
)
