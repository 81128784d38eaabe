module github.com/mycelium-mesh/mycelium/l2-seq

go 1.26.0

replace github.com/mycelium-mesh/mycelium/l1-link => ../l1-link

require github.com/mycelium-mesh/mycelium/l1-link v0.0.0-00010101000000-000000000000
