// Package apps is the home of the mesh's applications: stream, gossip,
// services (the service directory), messages (store and forward) and admin
// (node management); each application lives in its own package under
// l4-apps and plugs into the node runtime of l2-seq through the
// application interface that layer owns (node.Register). docs/apps.md
// describes them.
package apps
