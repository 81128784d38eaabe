// Package apps is the home of the mesh's applications (gossip, service
// announcement, encryption, node management); each application lives in its
// own package under l4-apps and plugs into the node runtime of l2-seq through
// the application interface that layer owns.
package apps
